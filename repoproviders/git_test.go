package repoproviders

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/binderbuild/binderbuild"
)

// gitSpecOf builds a git spec from an unescaped URL and ref, the way the
// BinderHub UI does (the URL fully escaped, the ref escaped as a path).
func gitSpecOf(repoURL, ref string) string {
	return quote(repoURL) + "/" + url.PathEscape(ref)
}

func TestGitParse(t *testing.T) {
	const sha = "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603"
	tests := []struct {
		name    string
		cfg     GitConfig
		spec    string
		wantURL string
		wantRef string
	}{
		{
			name:    "https",
			spec:    "https%3A%2F%2Fgithub.com%2Fjupyterhub%2Fzero-to-jupyterhub-k8s/" + sha,
			wantURL: "https://github.com/jupyterhub/zero-to-jupyterhub-k8s",
			wantRef: sha,
		},
		{
			name:    "upstream docs example",
			spec:    "https%3A%2F%2Fgithub.com%2Fbinder-examples%2Fconda/main",
			wantURL: "https://github.com/binder-examples/conda",
			wantRef: "main",
		},
		{
			name:    "unescaped slashes in ref",
			spec:    "https%3A%2F%2Fexample.org%2Frepo.git/feature/x",
			wantURL: "https://example.org/repo.git",
			wantRef: "feature/x",
		},
		{
			name:    "escaped ref, plus kept",
			spec:    "git%3A%2F%2Fexample.org%2Fa+b/feature%2Fa+b",
			wantURL: "git://example.org/a+b",
			wantRef: "feature/a+b",
		},
		{
			name:    "scp style to ssh",
			cfg:     GitConfig{AllowedProtocols: []string{"https", "ssh"}},
			spec:    "git%40github.com%3Ajupyterhub%2Fbinderhub/main",
			wantURL: "ssh://git@github.com/jupyterhub/binderhub",
			wantRef: "main",
		},
		{
			name:    "ssh user name is no credential",
			cfg:     GitConfig{AllowedProtocols: []string{"ssh"}},
			spec:    gitSpecOf("ssh://git@example.org:2222/r.git", "HEAD"),
			wantURL: "ssh://git@example.org:2222/r.git",
			wantRef: "HEAD",
		},
		{
			name:    "allowed host",
			cfg:     GitConfig{AllowedHosts: []string{"127.0.0.1:8080"}},
			spec:    gitSpecOf("http://127.0.0.1:8080/r.git", "main"),
			wantURL: "http://127.0.0.1:8080/r.git",
			wantRef: "main",
		},
		{
			name:    "allowed host, any port",
			cfg:     GitConfig{AllowedHosts: []string{"10.0.0.5", "[fd00::1]"}},
			spec:    gitSpecOf("https://10.0.0.5:3000/r.git", "main"),
			wantURL: "https://10.0.0.5:3000/r.git",
			wantRef: "main",
		},
		{
			name:    "allowed IPv6 host, other spelling",
			cfg:     GitConfig{AllowedHosts: []string{"[fd00::1]:443"}},
			spec:    gitSpecOf("https://[fd00:0::1]/r.git", "main"),
			wantURL: "https://[fd00:0::1]/r.git",
			wantRef: "main",
		},
		{
			name:    "allowed host, default port",
			cfg:     GitConfig{AllowedHosts: []string{"Git.Internal:9418"}},
			spec:    gitSpecOf("git://git.internal/r.git", "main"),
			wantURL: "git://git.internal/r.git",
			wantRef: "main",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewGit(tc.cfg, nil, nil).Parse(tc.spec)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tc.spec, err)
			}
			want := binderbuild.Repo{
				Provider:     "git",
				ProviderName: "Git",
				Spec:         tc.spec,
				URL:          tc.wantURL,
				Ref:          tc.wantRef,
				BuildSlug:    tc.wantURL,
			}
			if got != want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.spec, got, want)
			}
		})
	}
}

func TestGitParseErrors(t *testing.T) {
	const github = "https%3A%2F%2Fgithub.com%2Fa%2Fb"
	checkParseErrors(t, NewGit(GitConfig{}, nil, nil), []parseErrorCase{
		// Upstream's test rows and messages.
		{spec: "not%20a%20repo/main", want: "Unsupported git url not a repo, protocol  not in git, http, https"},
		{spec: "ftp%3A%2F%2Fprotocol.unsupported/main", want: "Unsupported git url ftp://protocol.unsupported, protocol ftp not in git, http, https"},
		{spec: "git%40github.com%3Ajupyterhub%2Fbinderhub/main", want: "Unsupported git url ssh://git@github.com/jupyterhub/binderhub, protocol ssh not in git, http, https"},
		{spec: "file%3A%2F%2F%2Fetc/main", want: "Unsupported git url file:///etc, protocol file not in git, http, https"},
		{spec: github + "/", want: "`unresolved_ref` must be specified in the url for the basic git provider"},
		// Malformed specs.
		{spec: github, want: `Spec is not of the form "<escaped repo URL>/<ref>", provided: "https%3A%2F%2Fgithub.com%2Fa%2Fb".`},
		{spec: "https%3A%2F%2Fgithub.com%2Fa%zz/main", want: `Spec "https%3A%2F%2Fgithub.com%2Fa%zz/main" contains an invalid percent-encoding.`},
		{spec: github + "/ma%in", want: `Spec "https%3A%2F%2Fgithub.com%2Fa%2Fb/ma%in" contains an invalid percent-encoding.`},
		{spec: "https%3A%2F%2F/main", want: `Invalid git url "https://": expected <scheme>://<host>/<path>.`},
		{spec: "https%3Agithub.com/main", want: `Invalid git url "https:github.com": expected <scheme>://<host>/<path>.`},
		{spec: "http%3A%2F%2F%5B%3A%3A1/main", want: `Invalid git url "http://[::1": expected <scheme>://<host>/<path>.`},
		// Option and control character injection.
		{spec: "-u%20x/main", want: `Invalid git url "-u x": it must not start with "-" or contain control characters.`},
		{spec: "--upload-pack=touch%20%2Ftmp%2Fx/main", want: `Invalid git url "--upload-pack=touch /tmp/x": it must not start with "-" or contain control characters.`},
		{spec: "https%3A%2F%2Fgithub.com%2Fa%0A/main", want: `Invalid git url "https://github.com/a\n": it must not start with "-" or contain control characters.`},
		{spec: "https%3A%2F%2Fgithub.com%2Fa%00/main", want: `Invalid git url "https://github.com/a\x00": it must not start with "-" or contain control characters.`},
		{spec: "https%3A%2F%2Fgithub.com%2Fa%7F/main", want: `Invalid git url "https://github.com/a\x7f": it must not start with "-" or contain control characters.`},
		{spec: "https%3A%2F%2Fgithub.com%2Fa%09/main", want: `Invalid git url "https://github.com/a\t": it must not start with "-" or contain control characters.`},
		{spec: github + "/-x", want: `Invalid git ref "-x": it must not start with "-".`},
		{spec: github + "/--upload-pack=x", want: `Invalid git ref "--upload-pack=x": it must not start with "-".`},
		{spec: github + "/a%0D%0Ab", want: `Invalid git ref "a\r\nb": it must not contain control characters.`},
		{spec: github + "/a%20b", want: `Invalid git ref "a b": it must not contain spaces.`},
		{spec: github + "/a..b", want: `Invalid git ref "a..b": it must not contain "..".`},
		{spec: github + "/a@%7Bu%7D", want: `Invalid git ref "a@{u}": it must not contain "@{".`},
		{spec: github + "/x.lock", want: `Invalid git ref "x.lock": no part of it may end with ".lock".`},
		{spec: github + "/v*", want: `Invalid git ref "v*": it must not contain "*".`},
		{spec: github + "/@", want: `Invalid git ref "@": it must not be "@".`},
		// Credentials, queries, fragments.
		{spec: "https%3A%2F%2Fuser%3Apass%40github.com%2Fa/main", want: "Invalid git url https://github.com/a: credentials in URLs are not allowed."},
		{spec: "https%3A%2F%2Fghp_token%40github.com%2Fa/main", want: "Invalid git url https://github.com/a: credentials in URLs are not allowed."},
		{spec: "git%3A%2F%2Fuser%40github.com%2Fa/main", want: "Invalid git url git://github.com/a: credentials in URLs are not allowed."},
		{spec: "https%3A%2F%2Fgithub.com%2Fa%3Fx%3D1/main", want: `Invalid git url "https://github.com/a?x=1": query strings and fragments are not supported.`},
		{spec: "https%3A%2F%2Fgithub.com%2Fa%23frag/main", want: `Invalid git url "https://github.com/a#frag": query strings and fragments are not supported.`},
		// Private, loopback and numeric hosts.
		{spec: gitSpecOf("http://127.0.0.1:8080/r.git", "main"), want: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
		{spec: gitSpecOf("http://[::1]/r.git", "main"), want: "Refusing to contact ::1: it is a private or loopback address."},
		{spec: gitSpecOf("http://[::ffff:127.0.0.1]/r.git", "main"), want: "Refusing to contact ::ffff:127.0.0.1: it is a private or loopback address."},
		{spec: gitSpecOf("http://169.254.169.254/latest/meta-data", "main"), want: "Refusing to contact 169.254.169.254: it is a private or loopback address."},
		{spec: gitSpecOf("http://10.1.2.3/r.git", "main"), want: "Refusing to contact 10.1.2.3: it is a private or loopback address."},
		{spec: gitSpecOf("http://100.64.0.1/r.git", "main"), want: "Refusing to contact 100.64.0.1: it is a private or loopback address."},
		{spec: gitSpecOf("http://[fd12:3456::1]/r.git", "main"), want: "Refusing to contact fd12:3456::1: it is a private or loopback address."},
		{spec: gitSpecOf("http://0.0.0.0/r.git", "main"), want: "Refusing to contact 0.0.0.0: it is a private or loopback address."},
		{spec: gitSpecOf("http://2130706433/r.git", "main"), want: "Refusing to contact 2130706433: numeric host names must be written as dotted-decimal IPv4 addresses."},
		{spec: gitSpecOf("http://0177.0.0.1/r.git", "main"), want: "Refusing to contact 0177.0.0.1: numeric host names must be written as dotted-decimal IPv4 addresses."},
		{spec: gitSpecOf("http://0x7f.1/r.git", "main"), want: "Refusing to contact 0x7f.1: numeric host names must be written as dotted-decimal IPv4 addresses."},
		{spec: gitSpecOf("http://127.1/r.git", "main"), want: "Refusing to contact 127.1: numeric host names must be written as dotted-decimal IPv4 addresses."},
		{spec: gitSpecOf("http://localhost:8080/r.git", "main"), want: "Refusing to contact localhost: it is a name for the local machine."},
		{spec: gitSpecOf("http://LocalHost./r.git", "main"), want: "Refusing to contact LocalHost.: it is a name for the local machine."},
		{spec: gitSpecOf("http://app.localhost/r.git", "main"), want: "Refusing to contact app.localhost: it is a name for the local machine."},
		{spec: gitSpecOf("http://127.0.0.%31/r.git", "main"), want: `Invalid git url "http://127.0.0.%31/r.git": expected <scheme>://<host>/<path>.`},
	})
}

func TestGitParseProtocolsConfig(t *testing.T) {
	g := NewGit(GitConfig{AllowedProtocols: []string{"https", " SSH", "http", "https"}}, nil, nil)
	checkParseErrors(t, g, []parseErrorCase{
		{spec: "git%3A%2F%2Fexample.org%2Fr/main", want: "Unsupported git url git://example.org/r, protocol git not in http, https, ssh"},
		{spec: "ssh%3A%2F%2Fu%3Ap%40example.org%2Fr/main", want: "Invalid git url ssh://example.org/r: credentials in URLs are not allowed."},
	})
	checkParseErrors(t, NewGit(GitConfig{AllowedHosts: []string{"127.0.0.1:8080"}}, nil, nil), []parseErrorCase{
		{spec: gitSpecOf("http://127.0.0.1:8081/r.git", "main"), want: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
		{spec: gitSpecOf("http://127.0.0.1/r.git", "main"), want: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
	})
}

func TestGitResolveSHAWithoutNetwork(t *testing.T) {
	// example.invalid resolves, through the test's DNS server on loopback,
	// to a public address that nothing may contact: a full sha needs only
	// the address check.
	const sha = "ada2170a2181ae1760d85eab74e5264d0c6bb67f"
	m, _ := newTestMetrics(t)
	g := NewGit(GitConfig{AllowedProtocols: []string{"https", "ssh"}}, m, nil)
	g.guard.public.Resolver = fakeResolver(t, map[string][]netip.Addr{
		"example.invalid": {netip.MustParseAddr("203.0.114.1"), netip.MustParseAddr("2001:db9::1")},
	})
	tests := []struct {
		spec, wantRef, wantSpec, wantURL string
	}{
		{
			spec:     "https%3A%2F%2Fexample.invalid%2Fjupyterhub%2Fzero-to-jupyterhub-k8s/" + sha,
			wantRef:  sha,
			wantSpec: "https%3A%2F%2Fexample.invalid%2Fjupyterhub%2Fzero-to-jupyterhub-k8s/" + sha,
			wantURL:  "https://example.invalid/jupyterhub/zero-to-jupyterhub-k8s",
		},
		{
			// Upstream's SHA1_PATTERN.match is a prefix match.
			spec:     "https%3A%2F%2Fexample.invalid%2Fr/" + sha + "-suffix",
			wantRef:  sha + "-suffix",
			wantSpec: "https%3A%2F%2Fexample.invalid%2Fr/" + sha + "-suffix",
			wantURL:  "https://example.invalid/r",
		},
		{
			spec:     "git%40example.invalid%3Aorg%2Frepo/" + sha,
			wantRef:  sha,
			wantSpec: "git%40example.invalid%3Aorg%2Frepo/" + sha,
			wantURL:  "ssh://git@example.invalid/org/repo",
		},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := resolveSpec(t, g, tc.spec)
			if err != nil {
				t.Fatalf("Resolve(%q) error = %v", tc.spec, err)
			}
			if got.ResolvedRef != tc.wantRef || got.ResolvedSpec != tc.wantSpec || got.RefURL != tc.wantURL {
				t.Errorf("Resolve(%q) = (%q, %q, %q), want (%q, %q, %q)", tc.spec,
					got.ResolvedRef, got.ResolvedSpec, got.RefURL, tc.wantRef, tc.wantSpec, tc.wantURL)
			}
		})
	}
	if n := testutil.CollectAndCount(m.upstream); n != 0 {
		t.Errorf("upstream request series = %d, want 0", n)
	}

	_, err := resolveSpec(t, g, "git%40example.invalid%3Aorg%2Frepo/main")
	if want := "refs of ssh URLs cannot be resolved, use a full 40-character commit sha as ref"; err == nil || err.Error() != want {
		t.Errorf("Resolve(ssh, main) error = %v, want %q", err, want)
	}
}
