package repoproviders

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/binderbuild/binderbuild"
)

// GistConfig configures the gist provider.
type GistConfig struct {
	// GitHub is the GitHub API (base URL and credentials) asked about gists.
	GitHub GitHubConfig
	// Hostname is the host of gist URLs. Default "gist.github.com".
	Hostname string
	// AllowSecretGist allows building secret gists. Default false, as
	// upstream's allow_secret_gist.
	AllowSecretGist bool
}

// Gist resolves gist specs, "<user>/<gist id>[/<ref>]", like upstream's
// GistRepoProvider: GET <api>/gists/<id> lists the gist's versions; a ref
// that is empty, HEAD, master or main is the newest version, any other ref
// must be one of them. Secret gists are refused unless allowed. It is safe
// for concurrent use.
type Gist struct {
	gh          *GitHub // API base URL, credentials, rate-limit handling
	hostname    string
	allowSecret bool
	api         *apiClient
}

var _ Provider = (*Gist)(nil)

// NewGist returns the gist provider; m and log may be nil.
func NewGist(cfg GistConfig, m *Metrics, log *slog.Logger) *Gist {
	gh := NewGitHub(cfg.GitHub, nil, m, log)
	return &Gist{
		gh:          gh,
		hostname:    orDefault(cfg.Hostname, "gist.github.com"),
		allowSecret: cfg.AllowSecretGist,
		api:         newAPIClient("the GitHub API", upstreamGitHub, ArchiveConfig{Timeout: gh.cfg.Timeout}.withDefaults(), nil, m, log),
	}
}

// Prefix returns "gist".
func (g *Gist) Prefix() string { return "gist" }

// Display returns the gist entry of /api/repoproviders.
func (g *Gist) Display() any {
	return newDisplayConfig("GitHub Gist", "gist", `[^/]+/[^/]+(/[^/]+)?`, `^(https?://gist.github.com/)?(?<repo>.*[^/])/?`,
		"Gist ID (username/gistId) or URL", "", false)
}

type gistSpec struct {
	user, id, ref string
}

// parseGistSpec splits on "/" like upstream: user, gist id and an optional
// ref; further parts are ignored.
func parseGistSpec(spec string) (gistSpec, error) {
	if err := checkSpec(spec); err != nil {
		return gistSpec{}, err
	}
	parts := strings.Split(spec, "/")
	if len(parts) < 2 {
		return gistSpec{}, userErrorf(`Spec is not of the form "user/gistId[/ref]", provided: "%s".`, spec)
	}
	s := gistSpec{user: parts[0], id: parts[1]}
	if len(parts) > 2 {
		s.ref = parts[2]
	}
	if !validRepoName(s.user) || !validRepoName(s.id) || (s.ref != "" && !validRepoName(s.ref)) {
		return gistSpec{}, userErrorf(`Invalid gist spec "%s": names may only contain letters, digits, "-", "_" and ".".`, spec)
	}
	return s, nil
}

// Parse parses "<user>/<gist id>[/<ref>]".
func (g *Gist) Parse(spec string) (binderbuild.Repo, error) {
	s, err := parseGistSpec(spec)
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{
		Provider:       "gist",
		ProviderName:   "Gist",
		Spec:           spec,
		URL:            "https://" + g.hostname + "/" + s.user + "/" + s.id + ".git",
		Ref:            s.ref,
		BuildSlug:      s.id,
		GitCredentials: g.gh.cfg.GitCredentials,
	}, nil
}

// Resolve picks the version. A missing gist and an unknown version are
// binderbuild.ErrRefNotFound.
func (g *Gist) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	s, err := parseGistSpec(repo.Spec)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	versions, public, err := g.history(ctx, s.id)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	if !g.allowSecret && !public {
		return binderbuild.Resolved{}, userErrorf("You seem to want to use a secret Gist, but do not have permission to do so. " +
			"To enable secret Gist support, set (or have an administrator set) 'GistRepoProvider.allow_secret_gist = True'")
	}
	var sha string
	switch {
	case s.ref == "" || s.ref == "HEAD" || s.ref == "master" || s.ref == "main":
		if len(versions) == 0 {
			return binderbuild.Resolved{}, fmt.Errorf("gist %s has no versions: %w", s.id, binderbuild.ErrRefNotFound)
		}
		sha = versions[0]
	case slices.Contains(versions, s.ref):
		sha = s.ref
	default:
		return binderbuild.Resolved{}, fmt.Errorf("gist %s version %q: %w", s.id, s.ref, binderbuild.ErrRefNotFound)
	}
	if !isCommitID(sha) {
		return binderbuild.Resolved{}, userErrorf("the GitHub API returned an invalid gist version")
	}
	return binderbuild.Resolved{
		Repo:         repo,
		ResolvedRef:  sha,
		ResolvedSpec: s.user + "/" + s.id + "/" + sha,
		RefURL:       "https://" + g.hostname + "/" + s.user + "/" + s.id + "/" + sha,
	}, nil
}

// history returns the gist's versions, newest first, and whether it is
// public.
func (g *Gist) history(ctx context.Context, id string) ([]string, bool, error) {
	u := g.gh.api + "/gists/" + id
	header := g.gh.authHeader()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Accept", "application/vnd.github+json")
	resp, err := g.api.do(ctx, u, header)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	g.gh.recordRateLimit(ctx, resp.Header)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		g.api.metrics.upstreamRequest(upstreamGitHub, outcomeNotFound)
		return nil, false, fmt.Errorf("gist %s: HTTP 404: %w", id, binderbuild.ErrRefNotFound)
	case resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-Ratelimit-Remaining") == "0":
		g.api.metrics.upstreamRequest(upstreamGitHub, outcomeRateLimited)
		return nil, false, g.gh.rateLimitError(resp.Header)
	case resp.StatusCode != http.StatusOK:
		return nil, false, g.api.statusErr(u, resp)
	}
	var gist struct {
		Public  bool `json:"public"`
		History []struct {
			Version string `json:"version"`
		} `json:"history"`
	}
	if err := json.NewDecoder(&limitedReader{r: resp.Body, n: g.api.maxBody}).Decode(&gist); err != nil {
		g.api.metrics.upstreamRequest(upstreamGitHub, outcomeError)
		return nil, false, &userError{msg: "could not read the GitHub API response", err: err}
	}
	g.api.metrics.upstreamRequest(upstreamGitHub, outcomeOK)
	versions := make([]string, len(gist.History))
	for i, h := range gist.History {
		versions[i] = h.Version
	}
	return versions, gist.Public, nil
}

// authHeader returns the credentials GitHub API requests carry: the access
// token, else the OAuth client id and secret.
func (g *GitHub) authHeader() http.Header {
	switch {
	case g.cfg.AccessToken != "":
		return http.Header{"Authorization": {"token " + g.cfg.AccessToken}}
	case g.cfg.ClientID != "" && g.cfg.ClientSecret != "":
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(g.cfg.ClientID, g.cfg.ClientSecret)
		return req.Header
	}
	return nil
}
