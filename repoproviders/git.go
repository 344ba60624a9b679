package repoproviders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/binderbuild/binderbuild"
)

// GitConfig configures the git provider. The zero value accepts https, http
// and git URLs of public hosts.
type GitConfig struct {
	// AllowedProtocols are the URL schemes users may use. Default https,
	// http, git. Upstream also allows ssh; refs of ssh URLs are not resolved
	// here, so such specs need a full commit sha as ref.
	AllowedProtocols []string `envconfig:"GIT_ALLOWED_SCHEMES" default:"https,http,git" desc:"URL schemes the git provider accepts"`
	// AllowedHosts lists hosts ("git.internal") and host:port pairs
	// ("10.0.0.5:3000") that may be contacted although they are, or resolve
	// to, private, loopback or link-local addresses. Default none.
	AllowedHosts []string `envconfig:"GIT_ALLOWED_HOSTS" desc:"comma list of git hosts (host or host:port) allowed even though they resolve to private or loopback addresses; dataverse and ckan may contact them too"`
	// Timeout bounds one listing of a repository's refs. Default 30s.
	Timeout time.Duration `ignored:"true"`
	// MaxRefsBytes bounds the size of a repository's ref advertisement, as
	// decompressed: go-git holds about 2.5 times as much while parsing it.
	// Default 4 MiB, some 60000 refs.
	MaxRefsBytes int64 `ignored:"true"`
}

// Git resolves git specs, "<escaped repo URL>/<ref>" (spec §10.2). A ref that
// starts with a 40-hex sha is used as it is; any other ref is looked up like
// `git ls-remote -- <url> <ref>`, with go-git over http(s) and git://.
// Connections to private, loopback, link-local and other special addresses
// are refused unless the host is in GitConfig.AllowedHosts; connections are
// made directly, without proxies from the environment, so that the address
// checked is the address connected to. It is safe for concurrent use.
type Git struct {
	protocols    []string // sorted
	allow        hostList
	timeout      time.Duration
	maxRefsBytes int64
	guard        *guard
	http         transport.Transport // go-git smart HTTP over guard
	metrics      *Metrics
	log          *slog.Logger
}

var _ Provider = (*Git)(nil)

// NewGit returns the git provider; m and log may be nil.
func NewGit(cfg GitConfig, m *Metrics, log *slog.Logger) *Git {
	protocols := []string{"git", "http", "https"}
	if len(cfg.AllowedProtocols) > 0 {
		protocols = nil
		for _, p := range cfg.AllowedProtocols {
			protocols = append(protocols, strings.ToLower(strings.TrimSpace(p)))
		}
		slices.Sort(protocols)
		protocols = slices.Compact(protocols)
	}
	g := &Git{
		protocols:    protocols,
		allow:        newHostList(cfg.AllowedHosts),
		timeout:      orDefault(cfg.Timeout, 30*time.Second),
		maxRefsBytes: orDefault(cfg.MaxRefsBytes, 4<<20),
		metrics:      m,
		log:          discardIfNil(log),
	}
	g.guard = newGuard(g.allow, g.timeout)
	g.http = githttp.NewClient(&http.Client{
		Transport: limitTransport{
			next: &http.Transport{
				Proxy:                 nil, // the address checks need direct connections
				DialContext:           g.guard.DialContext,
				ForceAttemptHTTP2:     true,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: g.timeout,
				MaxIdleConns:          16,
				IdleConnTimeout:       90 * time.Second,
			},
			max: g.maxRefsBytes,
		},
		Timeout: g.timeout,
	})
	return g
}

// Prefix returns "git".
func (g *Git) Prefix() string { return "git" }

// Display returns the git entry of /api/repoproviders.
func (g *Git) Display() any {
	return newDisplayConfig("Git repository", "git", `[^/]+/.+`, "",
		"Arbitrary git repository URL", "example: http://git.example.com/repo", true)
}

// scpLike matches "user@host:path" (upstream GIT_SSH_PATTERN, used with
// re.match and re.IGNORECASE).
var scpLike = regexp.MustCompile(`(?i)^([\w\-]+@[\w\-.]+):(.+)`)

type gitSpec struct {
	rawURL  string // as in the spec, percent-encoded
	slugURL string // decoded, scp-style rewritten to ssh://
	url     string // slugURL with its host in ASCII (IDNA), what git clones
	host    string // url's host, without brackets
	port    string // url's port, or its scheme's default
	ref     string
}

func (g *Git) parse(spec string) (gitSpec, error) {
	if err := checkSpec(spec); err != nil {
		return gitSpec{}, err
	}
	rawURL, rawRef, ok := strings.Cut(spec, "/")
	if !ok {
		return gitSpec{}, userErrorf(`Spec is not of the form "<escaped repo URL>/<ref>", provided: "%s".`, spec)
	}
	repoURL, err := unescape(spec, rawURL)
	if err != nil {
		return gitSpec{}, err
	}
	if strings.HasPrefix(repoURL, "-") || strings.ContainsFunc(repoURL, isControl) {
		return gitSpec{}, userErrorf("Invalid git url %q: it must not start with \"-\" or contain control characters.", repoURL)
	}
	if m := scpLike.FindStringSubmatch(repoURL); m != nil {
		repoURL = "ssh://" + m[1] + "/" + m[2]
	}
	if scheme := urlScheme(repoURL); !slices.Contains(g.protocols, scheme) {
		return gitSpec{}, userErrorf("Unsupported git url %s, protocol %s not in %s", repoURL, scheme, strings.Join(g.protocols, ", "))
	}
	s := gitSpec{rawURL: rawURL, slugURL: repoURL}
	if s.url, s.host, s.port, err = g.checkURL(repoURL); err != nil {
		return gitSpec{}, err
	}
	ref, err := unescape(spec, rawRef)
	if err != nil {
		return gitSpec{}, err
	}
	if ref == "" {
		return gitSpec{}, userErrorf("`unresolved_ref` must be specified in the url for the basic git provider")
	}
	if err := checkRef(ref); err != nil {
		return gitSpec{}, err
	}
	s.ref = ref
	return s, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// urlScheme returns the lower-cased scheme of s as Python's urlsplit finds
// it: the text before the first ":" if it starts with a letter and consists
// of letters, digits, "+", "-" and ".". Otherwise "".
func urlScheme(s string) string {
	i := strings.IndexByte(s, ':')
	if i <= 0 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return ""
	}
	for j := range i {
		if c := s[j]; !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return ""
		}
	}
	return strings.ToLower(s[:i])
}

var defaultPorts = map[string]string{"http": "80", "https": "443", "git": "9418", "ssh": "22"}

// checkURL refuses URLs that are malformed, carry credentials, queries or
// fragments, or name a host that is known without I/O to be private (see
// checkHost for names that resolve to one). It returns the URL with its
// host in ASCII, that host and the port to contact.
func (g *Git) checkURL(repoURL string) (clone, host, port string, err error) {
	u, err := url.Parse(repoURL)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "", "", "", userErrorf("Invalid git url %q: expected <scheme>://<host>/<path>.", repoURL)
	}
	if u.User != nil {
		_, hasPassword := u.User.Password()
		if u.Scheme != "ssh" || hasPassword {
			u.User = nil
			return "", "", "", userErrorf("Invalid git url %s: credentials in URLs are not allowed.", u)
		}
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", "", "", userErrorf("Invalid git url %q: query strings and fragments are not supported.", repoURL)
	}
	host, err = asciiHost(u.Hostname())
	if err != nil {
		return "", "", "", &userError{msg: fmt.Sprintf("Invalid git url %q: %q is not a valid host name.", repoURL, u.Hostname()), err: err}
	}
	if host != u.Hostname() {
		u.Host = host
		if u.Port() != "" {
			u.Host += ":" + u.Port()
		}
		repoURL = u.String()
	}
	port = u.Port()
	if port == "" {
		port = defaultPorts[u.Scheme]
	}
	if g.allow.contains(host, port) {
		return repoURL, host, port, nil
	}
	if reason := hostProblem(host); reason != "" {
		return "", "", "", &refusedHostError{host: host, reason: reason}
	}
	return repoURL, host, port, nil
}

// checkHost refuses the host of s, unless allowed, when its name resolves to
// an address that is not public. It runs for every ref, full shas
// included, since the build clones from that host. A name that cannot be
// resolved is refused too.
func (g *Git) checkHost(ctx context.Context, s gitSpec) error {
	if g.allow.contains(s.host, s.port) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	err := checkResolved(ctx, g.guard.public.Resolver, s.host)
	var refused *refusedHostError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		return refused
	}
	g.log.Info("git host lookup failed", "host", s.host, "error", err)
	return &userError{msg: fmt.Sprintf("could not contact %s: %s", net.JoinHostPort(s.host, s.port), netReason(err)), err: err}
}

// Parse parses "<escaped repo URL>/<ref>": split on the first "/", both parts
// percent-decoded, "user@host:path" rewritten to ssh://user@host/path.
func (g *Git) Parse(spec string) (binderbuild.Repo, error) {
	s, err := g.parse(spec)
	if err != nil {
		return binderbuild.Repo{}, err
	}
	return binderbuild.Repo{
		Provider:     "git",
		ProviderName: "Git",
		Spec:         spec,
		URL:          s.url,
		Ref:          s.ref,
		BuildSlug:    s.slugURL,
	}, nil
}

// Resolve first refuses a host that resolves to an address that is not
// public (see GitConfig.AllowedHosts). It then returns a ref that starts
// with 40 lower-case hex digits as it is, without contacting the host (like
// upstream), and otherwise the first match of
// `git ls-remote -- <url> <ref>`. A missing, empty or private repository and
// a ref that matches nothing are binderbuild.ErrRefNotFound.
func (g *Git) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	s, err := g.parse(repo.Spec)
	if err != nil {
		return binderbuild.Resolved{}, err
	}
	if err := g.checkHost(ctx, s); err != nil {
		return binderbuild.Resolved{}, err
	}
	sha := s.ref
	if !hasSHAPrefix(s.ref) {
		if sha, err = g.lsRemote(ctx, s.url, s.ref); err != nil {
			return binderbuild.Resolved{}, err
		}
	}
	return binderbuild.Resolved{
		Repo:         repo,
		ResolvedRef:  sha,
		ResolvedSpec: s.rawURL + "/" + sha,
		RefURL:       s.url,
	}, nil
}
