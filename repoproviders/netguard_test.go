package repoproviders

import (
	"errors"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/binderbuild/binderbuild"
)

func TestIsPublicAddr(t *testing.T) {
	tests := map[string]bool{
		"8.8.8.8":                  true,
		"140.82.112.3":             true, // github.com
		"2606:50c0:8000::154":      true,
		"64:ff9b::808:808":         true, // NAT64 of 8.8.8.8
		"2002:808:808::1":          true, // 6to4 of 8.8.8.8
		"127.0.0.1":                false,
		"127.255.255.254":          false,
		"10.0.0.1":                 false,
		"172.16.0.1":               false,
		"172.31.255.255":           false,
		"192.168.1.1":              false,
		"100.64.0.1":               false,
		"100.127.255.255":          false,
		"169.254.169.254":          false,
		"0.0.0.0":                  false,
		"0.1.2.3":                  false,
		"224.0.0.1":                false,
		"239.255.255.250":          false,
		"255.255.255.255":          false,
		"240.0.0.1":                false,
		"192.0.0.170":              false,
		"198.18.0.1":               false,
		"::":                       false,
		"::1":                      false,
		"::127.0.0.1":              false,
		"::ffff:127.0.0.1":         false,
		"::ffff:10.0.0.1":          false,
		"::ffff:169.254.169.254":   false,
		"::ffff:0:7f00:1":          false, // IPv4-translated 127.0.0.1
		"::ffff:0:a00:1":           false, // IPv4-translated 10.0.0.1
		"::ffff:0:808:808":         true,  // IPv4-translated 8.8.8.8
		"fc00::1":                  false,
		"fd00:ec2::254":            false, // AWS metadata over IPv6
		"fe80::1":                  false,
		"fe80::1%eth0":             false,
		"ff02::1":                  false,
		"64:ff9b::7f00:1":          false, // NAT64 of 127.0.0.1
		"64:ff9b::a9fe:a9fe":       false, // NAT64 of 169.254.169.254
		"2002:7f00:1::1":           false, // 6to4 of 127.0.0.1
		"2002:a00:1::1":            false, // 6to4 of 10.0.0.1
		"2001:db8::1":              false,
		"fec0::1":                  false,
		"2001:0:4136:e378::1":      false, // Teredo
		"100::1":                   false,
		"64:ff9b:1::a00:1":         false,
		"2001:4860:4860::8888":     true,
		"2a00:1450:4001:82b::200e": true,
	}
	for s, want := range tests {
		if got := isPublicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("isPublicAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestHostProblem(t *testing.T) {
	tests := map[string]string{
		"github.com":       "",
		"GitHub.com.":      "",
		"8.8.8.8":          "",
		"git.example.org":  "",
		"1host.example":    "",
		"example.0x":       reasonNumeric,
		"example.123":      reasonNumeric,
		"127.0.0.1":        reasonIsPrivate,
		"::1":              reasonIsPrivate,
		"2130706433":       reasonNumeric,
		"0177.0.0.1":       reasonNumeric,
		"0x7f000001":       reasonNumeric,
		"0x7F.0.0.1":       reasonNumeric,
		"127.1":            reasonNumeric,
		"1.2.3.4.":         reasonNumeric,
		"localhost":        reasonLocalhost,
		"LOCALHOST.":       reasonLocalhost,
		"a.b.localhost":    reasonLocalhost,
		"notlocalhost":     "",
		"localhost.evil.x": "",
	}
	for host, want := range tests {
		if got := hostProblem(host); got != want {
			t.Errorf("hostProblem(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestHostList(t *testing.T) {
	l := newHostList([]string{"Git.Example.org", "127.0.0.1:8080", "[::1]:9418", "[fd00::1]", " spaced:1 ", ""})
	tests := []struct {
		host, port string
		want       bool
	}{
		{"git.example.org", "443", true},
		{"GIT.EXAMPLE.ORG", "80", true},
		{"127.0.0.1", "8080", true},
		{"127.0.0.1", "8081", false},
		{"::1", "9418", true},
		{"0:0::1", "9418", true},
		{"::1", "80", false},
		{"fd00::1", "1", true},
		{"spaced", "1", true},
		{"", "", false},
		{"example.org", "443", false},
	}
	for _, tc := range tests {
		if got := l.contains(tc.host, tc.port); got != tc.want {
			t.Errorf("contains(%q, %q) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
	if hostList(nil).contains("x", "1") {
		t.Error("empty list contains x:1")
	}
}

func TestLimitedReader(t *testing.T) {
	tests := []struct {
		in      string
		n       int64
		want    string
		wantErr error
	}{
		{in: "hello", n: 5, want: "hello"},
		{in: "hello", n: 6, want: "hello"},
		{in: "hello", n: 4, want: "hell", wantErr: errTooLarge},
		{in: "", n: 0, want: ""},
		{in: "x", n: 0, want: "", wantErr: errTooLarge},
	}
	for _, tc := range tests {
		got, err := io.ReadAll(&limitedReader{r: strings.NewReader(tc.in), n: tc.n})
		if string(got) != tc.want || !errors.Is(err, tc.wantErr) {
			t.Errorf("ReadAll(limit %d of %q) = %q, %v; want %q, %v", tc.n, tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestRefNameMatchesGit(t *testing.T) {
	refs := []string{
		"main", "HEAD", "feature/x", "v1.0", "0.9.1", "a/b/c", "ü", "a{b}", "a@b", "a@", "@@", "a/@", "@/a",
		"x.lockx", "a-b_c", "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
		"", "@", "a..b", "..", ".", "a/..", "a/./b", "a/.b", ".a", "a.", "a/", "/a", "a//b",
		"a.lock", "a.lock/b", "a/b.lock", ".lock", "a@{b", "@{", "a@{", "a b", "a~b", "a^b", "a:b",
		"a?b", "a*b", "a[b", "a\\b", "a\x7fb", "a\tb", "a\x01b", "a..", "a/b.",
	}
	for _, ref := range refs {
		err := exec.Command("git", "check-ref-format", "--allow-onelevel", ref).Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		wantValid := err == nil
		if got := refNameProblem(ref); (got == "") != wantValid {
			t.Errorf("refNameProblem(%q) = %q, want valid %v like git check-ref-format", ref, got, wantValid)
		}
	}
	for _, ref := range []string{"-x", "--upload-pack=x", "-"} {
		if got := refNameProblem(ref); got != `it must not start with "-"` {
			t.Errorf("refNameProblem(%q) = %q, want the leading-dash refusal", ref, got)
		}
	}
}

// TestGitChecksHostsOfEveryRef: the address check applies to full-sha refs
// too, which are used without contacting the host, and to Unicode host
// names, which are checked (and handed on) in their IDNA form. Names resolve
// through the test's DNS server; nothing else is contacted.
func TestGitChecksHostsOfEveryRef(t *testing.T) {
	const sha = "ada2170a2181ae1760d85eab74e5264d0c6bb67f"
	g := NewGit(GitConfig{AllowedHosts: []string{"allowed.test"}}, nil, nil)
	g.guard.public.Resolver = fakeResolver(t, map[string][]netip.Addr{
		"hosts-file.test":                  {netip.MustParseAddr("127.0.1.1")},
		"binder.default.svc.cluster.local": {netip.MustParseAddr("10.96.0.10")},
		"mixed.test":                       {netip.MustParseAddr("140.82.112.3"), netip.MustParseAddr("fd00::1")},
		"translated.test":                  {netip.MustParseAddr("::ffff:0:7f00:1")},
		"allowed.test":                     {netip.MustParseAddr("10.0.0.5")},
		"public.test":                      {netip.MustParseAddr("140.82.112.3")},
		"xn--bcher-kva.test":               {netip.MustParseAddr("140.82.112.4")},
	})
	resolvesPrivate := func(host string) string {
		return "Refusing to contact " + host + ": it resolves to a private or loopback address."
	}
	tests := []struct {
		url, ref, wantErr, wantURL string
	}{
		{url: "https://hosts-file.test/r", ref: sha, wantErr: resolvesPrivate("hosts-file.test")},
		{url: "https://binder.default.svc.cluster.local/r", ref: sha, wantErr: resolvesPrivate("binder.default.svc.cluster.local")},
		{url: "git://mixed.test/r", ref: sha, wantErr: resolvesPrivate("mixed.test")},
		{url: "https://translated.test/r", ref: sha, wantErr: resolvesPrivate("translated.test")},
		{url: "https://hosts-file.test/r", ref: "main", wantErr: resolvesPrivate("hosts-file.test")},
		{url: "https://nx.test:8443/r", ref: sha, wantErr: "could not contact nx.test:8443: host not found"},
		{url: "https://１２７.０.０.１/r", ref: sha, wantErr: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
		{url: "https://127。0。0。1/r", ref: sha, wantErr: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
		{url: "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/r", ref: sha, wantErr: "Refusing to contact localhost: it is a name for the local machine."},
		{url: "https://[::ffff:0:7f00:1]/r", ref: sha, wantErr: "Refusing to contact ::ffff:0:7f00:1: it is a private or loopback address."},
		{url: "https://[::ffff:0:a9fe:a9fe]/r", ref: sha, wantErr: "Refusing to contact ::ffff:0:a9fe:a9fe: it is a private or loopback address."},
		{url: "https://a⒈.test/r", ref: sha, wantErr: `Invalid git url "https://a⒈.test/r": "a⒈.test" is not a valid host name.`},
		{url: "https://allowed.test/r", ref: sha, wantURL: "https://allowed.test/r"},
		{url: "https://public.test/r", ref: sha, wantURL: "https://public.test/r"},
		{url: "https://bücher.test/r", ref: sha, wantURL: "https://xn--bcher-kva.test/r"},
	}
	for _, tc := range tests {
		t.Run(tc.url+"/"+tc.ref, func(t *testing.T) {
			spec := gitSpecOf(tc.url, tc.ref)
			repo, err := g.Parse(spec)
			var got binderbuild.Resolved
			if err == nil {
				got, err = g.Resolve(t.Context(), repo)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("Parse+Resolve error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse+Resolve error = %v", err)
			}
			if got.URL != tc.wantURL || got.RefURL != tc.wantURL || got.BuildSlug != tc.url {
				t.Errorf("URL, RefURL, BuildSlug = %q, %q, %q; want %q, %q, %q", got.URL, got.RefURL, got.BuildSlug, tc.wantURL, tc.wantURL, tc.url)
			}
		})
	}
}
