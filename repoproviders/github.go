package repoproviders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/ttl"
)

// GitHubConfig configures the gh provider. The zero value talks to
// github.com without credentials (60 API requests per hour).
type GitHubConfig struct {
	// Hostname is the host of repository and ref URLs. Default "github.com".
	Hostname string `envconfig:"GITHUB_HOSTNAME" default:"github.com" desc:"GitHub host of repository URLs"`
	// APIBaseURL is the API base URL; "{hostname}" in it is replaced by
	// Hostname. Default "https://api.{hostname}", i.e. https://api.github.com
	// (GitHub Enterprise: "https://{hostname}/api/v3").
	APIBaseURL string `envconfig:"GITHUB_API_URL" default:"https://api.github.com" desc:"GitHub API base URL (GitHub Enterprise: https://<host>/api/v3)"`
	// AccessToken, when set, is sent as "Authorization: token <t>" to the
	// API, and nowhere else. Secret.
	AccessToken string `envconfig:"GITHUB_TOKEN" fallback:"GITHUB_ACCESS_TOKEN" desc:"GitHub access token (secret)"`
	// GitCredentials is the input of repo2docker's git credential helper
	// for builds of this host's repositories, e.g.
	// `username=<token>\npassword=x-oauth-basic` (a literal backslash-n),
	// offered by git to Hostname only. Default none: unlike upstream,
	// AccessToken is never used for it. Secret.
	GitCredentials string `envconfig:"GITHUB_GIT_CREDENTIALS" desc:"git credentials of builds of GitHub repositories, e.g. username=<token>\\npassword=x-oauth-basic with a literal \\n (secret); git offers them to BINDERBUILD_GITHUB_HOSTNAME only. Default none: the API token never reaches builds"`
	// ClientID and ClientSecret are sent as HTTP Basic auth when both are set
	// and AccessToken is not. ClientSecret is a secret.
	ClientID     string `envconfig:"GITHUB_CLIENT_ID" desc:"GitHub OAuth app client id; with BINDERBUILD_GITHUB_CLIENT_SECRET and no token, API calls use it for the higher rate limit"`
	ClientSecret string `envconfig:"GITHUB_CLIENT_SECRET" desc:"GitHub OAuth app client secret (secret)"`
	// Timeout bounds one API request. Default 20s.
	Timeout time.Duration `ignored:"true"`
}

// GitHub resolves gh specs, "<user>/<repo>/<ref>", with the GitHub commits
// API (spec §10.1). Responses are cached like upstream: an ETag cache (1024
// entries, no expiry, revalidated with If-None-Match) and a not-found cache
// (1024 entries, 5 minutes, used only without an ETag entry). It is safe for
// concurrent use.
type GitHub struct {
	api      string // API base URL without trailing "/"
	cfg      GitHubConfig
	client   *http.Client
	metrics  *Metrics
	log      *slog.Logger
	etags    *lru.Cache[string, etagEntry] // API URL → last 200 answer
	notFound *ttl.Cache[string, struct{}]  // API URLs answered 404/422, for githubNotFoundAge
	now      func() time.Time              // replaced in tests
}

var _ Provider = (*GitHub)(nil)

type etagEntry struct {
	etag string
	sha  string
}

const (
	githubCacheSize   = 1024
	githubNotFoundAge = 300 * time.Second
)

// NewGitHub returns the gh provider. client makes the API requests (nil:
// a client with cfg.Timeout); m and log may be nil.
func NewGitHub(cfg GitHubConfig, client *http.Client, m *Metrics, log *slog.Logger) *GitHub {
	cfg.Hostname = orDefault(cfg.Hostname, "github.com")
	cfg.APIBaseURL = orDefault(cfg.APIBaseURL, "https://api.{hostname}")
	cfg.Timeout = orDefault(cfg.Timeout, defaultAPITimeout)
	g := &GitHub{
		api:     strings.TrimRight(strings.ReplaceAll(cfg.APIBaseURL, "{hostname}", cfg.Hostname), "/"),
		cfg:     cfg,
		client:  clientOrDefault(client, cfg.Timeout),
		metrics: m,
		log:     discardIfNil(log),
		now:     time.Now,
	}
	g.etags, _ = lru.New[string, etagEntry](githubCacheSize)
	g.notFound = ttl.New[string, struct{}](githubCacheSize, func() time.Time { return g.now() })
	return g
}

// Prefix returns "gh".
func (g *GitHub) Prefix() string { return "gh" }

// Display returns the gh entry of /api/repoproviders.
func (g *GitHub) Display() any {
	return newDisplayConfig("GitHub", "gh", `[^/]+/[^/]+/.+`, `^(https?://github.com/)?(?<repo>.*[^/])/?`,
		"GitHub repository name or URL",
		"example: binder-examples/requirements or https://github.com/binder-examples/requirements", false)
}

// githubSpec is a parsed gh spec.
type githubSpec struct {
	user, repo string
	rawRef     string // as in the spec, still percent-encoded
	ref        string // percent-decoded
}

func parseGitHubSpec(spec string) (githubSpec, error) {
	if err := checkSpec(spec); err != nil {
		return githubSpec{}, err
	}
	parts := strings.SplitN(spec, "/", 3)
	if len(parts) != 3 {
		msg := fmt.Sprintf(`Spec is not of the form "user/repo/ref", provided: "%s".`, spec)
		if len(parts) == 2 && parts[1] != "main" && parts[1] != "master" && parts[1] != "HEAD" {
			msg += fmt.Sprintf(` Did you mean "%s/HEAD"?`, spec)
		}
		return githubSpec{}, &userError{msg: msg}
	}
	s := githubSpec{user: parts[0], repo: strings.TrimSuffix(parts[1], ".git"), rawRef: parts[2]}
	if !validRepoName(s.user) || !validRepoName(s.repo) {
		return githubSpec{}, userErrorf(`Invalid GitHub repository "%s/%s" in spec "%s": names may only contain letters, digits, "-", "_" and ".".`,
			s.user, s.repo, spec)
	}
	ref, err := unescape(spec, s.rawRef)
	if err != nil {
		return githubSpec{}, err
	}
	if err := checkRef(ref); err != nil {
		return githubSpec{}, err
	}
	s.ref = ref
	return s, nil
}

// validRepoName reports whether s can be a GitHub user or repository name or
// one name of a GitLab path: letters, digits, "-", "_" and ".", but not "."
// or "..", so that API URL paths cannot be redirected by dot segments.
func validRepoName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Parse parses "<user>/<repo>/<ref>": split on the first two "/", ".git"
// stripped from repo. The ref may contain "/" and stays percent-encoded in
// API requests, like upstream; Repo.Ref holds it decoded.
func (g *GitHub) Parse(spec string) (binderbuild.Repo, error) {
	s, err := parseGitHubSpec(spec)
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{
		Provider:       "gh",
		ProviderName:   "GitHub",
		Spec:           spec,
		URL:            "https://" + g.cfg.Hostname + "/" + s.user + "/" + s.repo,
		Ref:            s.ref,
		BuildSlug:      s.user + "-" + s.repo,
		GitCredentials: g.cfg.GitCredentials,
	}, nil
}

// Resolve asks GET <api>/repos/<user>/<repo>/commits/<ref> for the commit.
// 404 and 422 answers, and 200 answers without "sha", are
// binderbuild.ErrRefNotFound.
func (g *GitHub) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	s, err := parseGitHubSpec(repo.Spec)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	sha, err := g.commit(ctx, g.apiURL(s))
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	return binderbuild.Resolved{
		Repo:         repo,
		ResolvedRef:  sha,
		ResolvedSpec: s.user + "/" + s.repo + "/" + sha,
		RefURL:       "https://" + g.cfg.Hostname + "/" + s.user + "/" + s.repo + "/tree/" + sha,
	}, nil
}

// apiURL returns the commits API URL of s. The ref is used as the spec has
// it (percent-encoded, like upstream), with characters that would end the
// path escaped.
func (g *GitHub) apiURL(s githubSpec) string {
	return g.api + "/repos/" + s.user + "/" + s.repo + "/commits/" + escapePath(s.rawRef)
}

// commit resolves one API URL, using and filling the caches.
func (g *GitHub) commit(ctx context.Context, apiURL string) (string, error) {
	cached, haveETag := g.etags.Get(apiURL)
	if !haveETag {
		if _, ok := g.notFound.Get(apiURL); ok {
			g.log.Debug("GitHub not-found cache hit", "url", apiURL)
			return "", fmt.Errorf("github %s: %w", apiURL, binderbuild.ErrRefNotFound)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL, nil)
	if err != nil {
		return "", fmt.Errorf("github request %s: %w", apiURL, err)
	}
	req.Header.Set("User-Agent", userAgent)
	switch {
	case g.cfg.AccessToken != "":
		req.Header.Set("Authorization", "token "+g.cfg.AccessToken)
	case g.cfg.ClientID != "" && g.cfg.ClientSecret != "":
		req.SetBasicAuth(g.cfg.ClientID, g.cfg.ClientSecret)
	}
	if haveETag {
		req.Header.Set("If-None-Match", cached.etag)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.metrics.upstreamRequest(upstreamGitHub, outcomeError)
		g.log.Warn("GitHub API request failed", "url", apiURL, "error", err)
		return "", &userError{msg: "could not reach the GitHub API: " + netReason(err), err: err}
	}
	defer resp.Body.Close()
	g.recordRateLimit(ctx, resp.Header)

	switch {
	case resp.StatusCode == http.StatusNotModified && haveETag:
		g.metrics.upstreamRequest(upstreamGitHub, outcomeNotModified)
		return cached.sha, nil // the Get above made the entry most recent
	case resp.StatusCode == http.StatusOK:
		return g.decodeCommit(apiURL, resp)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnprocessableEntity:
		g.metrics.upstreamRequest(upstreamGitHub, outcomeNotFound)
		g.notFound.Add(apiURL, struct{}{}, githubNotFoundAge)
		return "", fmt.Errorf("github %s: HTTP %d: %w", apiURL, resp.StatusCode, binderbuild.ErrRefNotFound)
	case resp.StatusCode == http.StatusForbidden && resp.Header.Get("X-Ratelimit-Remaining") == "0":
		g.metrics.upstreamRequest(upstreamGitHub, outcomeRateLimited)
		return "", g.rateLimitError(resp.Header)
	default:
		g.metrics.upstreamRequest(upstreamGitHub, outcomeError)
		g.log.Warn("unexpected GitHub API response", "url", apiURL, "status", resp.StatusCode)
		return "", userErrorf("unexpected response from the GitHub API (HTTP %d)", resp.StatusCode)
	}
}

func (g *GitHub) decodeCommit(apiURL string, resp *http.Response) (string, error) {
	sha, found, err := stringField(io.LimitReader(resp.Body, maxAPIBody), "sha")
	switch {
	case err != nil:
		g.metrics.upstreamRequest(upstreamGitHub, outcomeError)
		g.log.Warn("unreadable GitHub API response", "url", apiURL, "error", err)
		return "", &userError{msg: "could not read the GitHub API response", err: err}
	case !found:
		g.metrics.upstreamRequest(upstreamGitHub, outcomeNotFound)
		g.log.Warn("no sha in GitHub API response", "url", apiURL)
		return "", fmt.Errorf("github %s: no sha: %w", apiURL, binderbuild.ErrRefNotFound)
	case !isCommitID(sha):
		g.metrics.upstreamRequest(upstreamGitHub, outcomeError)
		g.log.Warn("invalid sha in GitHub API response", "url", apiURL, "sha", sha)
		return "", errors.New("the GitHub API returned an invalid commit id")
	}
	g.metrics.upstreamRequest(upstreamGitHub, outcomeOK)
	if etag := resp.Header.Get("ETag"); etag != "" {
		g.etags.Add(apiURL, etagEntry{etag: etag, sha: sha})
	}
	return sha, nil
}

// recordRateLimit updates the gauge from x-ratelimit-remaining and logs the
// remaining share of the limit: warning below 20 %, info below 50 %.
func (g *GitHub) recordRateLimit(ctx context.Context, h http.Header) {
	remaining, err := strconv.Atoi(h.Get("X-Ratelimit-Remaining"))
	if err != nil {
		return
	}
	g.metrics.setGitHubRemaining(remaining)
	limit, err := strconv.Atoi(h.Get("X-Ratelimit-Limit"))
	if err != nil || limit <= 0 {
		return
	}
	level := slog.LevelDebug
	switch fraction := float64(remaining) / float64(limit); {
	case fraction < 0.2:
		level = slog.LevelWarn
	case fraction < 0.5:
		level = slog.LevelInfo
	}
	g.log.Log(ctx, level, "GitHub rate limit remaining",
		"remaining", remaining, "limit", limit, "reset_in", g.untilReset(h))
}

// untilReset returns the time until x-ratelimit-reset, at least 0.
func (g *GitHub) untilReset(h http.Header) time.Duration {
	reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64)
	if err != nil {
		return 0
	}
	return max(time.Unix(reset, 0).Sub(g.now()), 0).Truncate(time.Second)
}

// rateLimitError rounds the time to the reset up to the next 5 minutes, as
// upstream does: N = 5·(1 + ⌊seconds/300⌋).
func (g *GitHub) rateLimitError(h http.Header) error {
	wait := g.untilReset(h)
	g.log.Error("GitHub rate limit exceeded", "limit", h.Get("X-Ratelimit-Limit"), "reset_in", wait)
	minutes := 5 * (1 + int64(wait.Seconds())/300)
	return userErrorf("GitHub rate limit exceeded. Try again in %d minutes.", minutes)
}

// escapePath makes s safe as part of a URL path: it keeps valid
// percent-escapes and the characters RFC 3986 allows in a path, and escapes
// everything else ("?", "#", spaces, non-ASCII, stray "%").
func escapePath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(c)
		case isAlnum(c) || strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
			b.WriteByte(c)
		default:
			pctEncode(&b, c)
		}
	}
	return b.String()
}

// pctEncode writes c as "%XX".
func pctEncode(b *strings.Builder, c byte) {
	const hexDigits = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&15])
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
