package repoproviders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild"
)

// GitLabConfig configures the gl provider. The zero value talks to
// gitlab.com without credentials.
type GitLabConfig struct {
	// BaseURL is the GitLab instance, used for API requests and repository
	// URLs. Default "https://gitlab.com" (upstream's hostname H is BaseURL
	// "https://H").
	BaseURL string `envconfig:"GITLAB_URL" default:"https://gitlab.com" desc:"GitLab base URL"`
	// AccessToken is sent as the access_token query parameter. Secret.
	AccessToken string `envconfig:"GITLAB_ACCESS_TOKEN" fallback:"GITLAB_ACCESS_TOKEN" desc:"GitLab access token (secret)"`
	// PrivateToken is sent as the private_token query parameter to the API,
	// and nowhere else. Secret.
	PrivateToken string `envconfig:"GITLAB_PRIVATE_TOKEN" fallback:"GITLAB_PRIVATE_TOKEN" desc:"GitLab private token (secret)"`
	// GitCredentials is the input of repo2docker's git credential helper
	// for builds of this instance's repositories, e.g.
	// `username=binderhub\npassword=<token>` (a literal backslash-n),
	// offered by git to BaseURL's host only. Default none: unlike upstream,
	// PrivateToken is never used for it. Secret.
	GitCredentials string `envconfig:"GITLAB_GIT_CREDENTIALS" desc:"git credentials of builds of GitLab repositories, e.g. username=binderhub\\npassword=<token> with a literal \\n (secret); git offers them to the host of BINDERBUILD_GITLAB_URL only. Default none"`
	// Timeout bounds one API request. Default 20s.
	Timeout time.Duration `ignored:"true"`
}

// GitLab resolves gl specs, "<escaped namespace>/<ref>", with the GitLab
// commits API (spec §10.3). It does not cache; wrap it with Cached.
type GitLab struct {
	base    string // BaseURL without trailing "/"
	cfg     GitLabConfig
	client  *http.Client
	metrics *Metrics
	log     *slog.Logger
}

var _ Provider = (*GitLab)(nil)

// NewGitLab returns the gl provider. client makes the API requests (nil: a
// client with cfg.Timeout); m and log may be nil.
func NewGitLab(cfg GitLabConfig, client *http.Client, m *Metrics, log *slog.Logger) *GitLab {
	cfg.BaseURL = orDefault(cfg.BaseURL, "https://gitlab.com")
	cfg.Timeout = orDefault(cfg.Timeout, defaultAPITimeout)
	l := &GitLab{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		cfg:     cfg,
		client:  clientOrDefault(client, cfg.Timeout),
		metrics: m,
		log:     discardIfNil(log),
	}
	return l
}

// Prefix returns "gl".
func (l *GitLab) Prefix() string { return "gl" }

// Display returns the gl entry of /api/repoproviders.
func (l *GitLab) Display() any {
	return newDisplayConfig("GitLab", "gl", `[^/]+/.+`, `^(https?://gitlab.com/)?(?<repo>.*[^/])/?`,
		"GitLab repository name or URL",
		"example: https://gitlab.com/mosaik/examples/mosaik-tutorials-on-binder or mosaik/examples/mosaik-tutorials-on-binder", true)
}

type gitlabSpec struct {
	rawNamespace string // as in the spec, percent-encoded
	namespace    string
	ref          string
}

func parseGitLabSpec(spec string) (gitlabSpec, error) {
	if err := checkSpec(spec); err != nil {
		return gitlabSpec{}, err
	}
	rawNamespace, rawRef, ok := strings.Cut(spec, "/")
	if !ok {
		return gitlabSpec{}, userErrorf(`Spec is not of the form "<escaped namespace>/<ref>", provided: "%s".`, spec)
	}
	namespace, err := unescape(spec, rawNamespace)
	if err != nil {
		return gitlabSpec{}, err
	}
	ref, err := unescape(spec, rawRef)
	if err != nil {
		return gitlabSpec{}, err
	}
	if ref == "" {
		return gitlabSpec{}, userErrorf("An unresolved ref is required")
	}
	if !validGitLabPath(namespace) {
		return gitlabSpec{}, userErrorf(`Invalid GitLab project path %q: it must be "/"-separated names of letters, digits, "-", "_" and ".".`, namespace)
	}
	if err := checkRef(ref); err != nil {
		return gitlabSpec{}, err
	}
	return gitlabSpec{rawNamespace: rawNamespace, namespace: namespace, ref: ref}, nil
}

// validGitLabPath reports whether p is a plausible GitLab project path:
// "/"-separated names GitLab allows, none of them "." or "..".
func validGitLabPath(p string) bool {
	for name := range strings.SplitSeq(p, "/") {
		if !validRepoName(name) {
			return false
		}
	}
	return true
}

// Parse parses "<escaped namespace>/<ref>" (e.g. "group%2Fproject/main"):
// split on the first "/", both parts percent-decoded.
func (l *GitLab) Parse(spec string) (binderbuild.Repo, error) {
	s, err := parseGitLabSpec(spec)
	if err != nil {
		return binderbuild.Repo{}, err
	}
	parts := strings.Split(s.namespace, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "-", "_-")
	}
	return binderbuild.Repo{
		Provider:       "gl",
		ProviderName:   "GitLab",
		Spec:           spec,
		URL:            l.base + "/" + s.namespace + ".git",
		Ref:            s.ref,
		BuildSlug:      strings.Join(parts, "-"),
		GitCredentials: l.cfg.GitCredentials,
	}, nil
}

// Resolve asks GET <base>/api/v4/projects/<namespace>/repository/commits/<ref>
// for the commit id; a 404 is binderbuild.ErrRefNotFound.
func (l *GitLab) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	s, err := parseGitLabSpec(repo.Spec)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	sha, err := l.commit(ctx, l.apiURL(s))
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	return binderbuild.Resolved{
		Repo:         repo,
		ResolvedRef:  sha,
		ResolvedSpec: s.rawNamespace + "/" + sha,
		RefURL:       l.base + "/" + s.namespace + "/tree/" + sha,
	}, nil
}

// apiURL returns the commits API URL of s, without tokens.
func (l *GitLab) apiURL(s gitlabSpec) string {
	return l.base + "/api/v4/projects/" + quote(s.namespace) + "/repository/commits/" + quote(s.ref)
}

// commit requests apiURL (which has no query) with the tokens added as query
// parameters. apiURL is safe to log; the URL with tokens never leaves here.
func (l *GitLab) commit(ctx context.Context, apiURL string) (string, error) {
	q := url.Values{}
	if l.cfg.AccessToken != "" {
		q.Set("access_token", l.cfg.AccessToken)
	}
	if l.cfg.PrivateToken != "" {
		q.Set("private_token", l.cfg.PrivateToken)
	}
	withTokens := apiURL
	if len(q) > 0 {
		withTokens += "?" + q.Encode()
	}

	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, withTokens, nil)
	if err != nil {
		return "", fmt.Errorf("gitlab request %s: %v", apiURL, stripURLError(err))
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := l.client.Do(req)
	if err != nil {
		cause := stripURLError(err)
		l.metrics.upstreamRequest(upstreamGitLab, outcomeError)
		l.log.Warn("GitLab API request failed", "url", apiURL, "error", cause)
		return "", &userError{msg: "could not reach the GitLab API: " + netReason(cause), err: cause}
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		l.metrics.upstreamRequest(upstreamGitLab, outcomeNotFound)
		return "", fmt.Errorf("gitlab %s: %w", apiURL, binderbuild.ErrRefNotFound)
	default:
		l.metrics.upstreamRequest(upstreamGitLab, outcomeError)
		l.log.Warn("unexpected GitLab API response", "url", apiURL, "status", resp.StatusCode)
		return "", userErrorf("unexpected response from the GitLab API (HTTP %d)", resp.StatusCode)
	}
	sha, found, err := stringField(io.LimitReader(resp.Body, maxAPIBody), "id")
	switch {
	case err != nil:
		l.metrics.upstreamRequest(upstreamGitLab, outcomeError)
		l.log.Warn("unreadable GitLab API response", "url", apiURL, "error", err)
		return "", &userError{msg: "could not read the GitLab API response", err: err}
	case !found || !isCommitID(sha):
		l.metrics.upstreamRequest(upstreamGitLab, outcomeError)
		l.log.Warn("no valid commit id in GitLab API response", "url", apiURL, "id", sha)
		return "", errors.New("the GitLab API returned no valid commit id")
	}
	l.metrics.upstreamRequest(upstreamGitLab, outcomeOK)
	return sha, nil
}

// stripURLError returns the cause inside a *url.Error, whose text would
// contain the request URL and with it the tokens.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// quote escapes every byte except A-Z a-z 0-9 _ . - ~, like Python's
// urllib.parse.quote(s, safe=""). (url.PathEscape keeps $&+:=@ and "/".)
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := range len(s) {
		if c := s[i]; isAlnum(c) || c == '_' || c == '.' || c == '-' || c == '~' {
			b.WriteByte(c)
		} else {
			pctEncode(&b, c)
		}
	}
	return b.String()
}
