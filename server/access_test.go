package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/auth"
)

// TestBanNetworksRows are upstream's ip_in_networks rows
// (binderhub/tests/test_utils.py, spec §9.1).
func TestBanNetworksRows(t *testing.T) {
	tests := []struct {
		ip       string
		networks string
		want     bool
	}{
		{"192.168.1.1", "192.168.1.1/32,255.255.0.0/16", true},
		{"192.168.1.2", "192.168.1.1/32,255.255.0.0/16", false},
		{"192.168.1.2", "192.168.1.0/24,255.255.0.0/16", true},
		{"192.168.1.2", "255.255.0.0/16,192.168.1.0/24", true},
		{"192.168.1.2", "", false},
		{"2001:db8:0:0:0:0:0:1", "2001:db8::/32,192.168.1.1/32", true},
		{"3001:db8:0:0:0:0:0:1", "2001:db8::/32,192.168.1.1/32", false},
		{"::ffff:192.168.1.2", "192.168.1.0/24", true},
	}
	for _, tc := range tests {
		var b BanList
		if err := b.UnmarshalText([]byte(tc.networks)); err != nil {
			t.Fatal(err)
		}
		if _, got := b.match(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("%s in [%s] = %v, want %v", tc.ip, tc.networks, got, tc.want)
		}
	}
}

func TestBanListFormat(t *testing.T) {
	var b BanList
	if err := b.UnmarshalText([]byte(" 10.0.0.0/8=internal net , 2001:db8::/32=docs,192.0.2.1 ")); err != nil {
		t.Fatal(err)
	}
	want := []struct{ prefix, label string }{{"10.0.0.0/8", "internal net"}, {"2001:db8::/32", "docs"}, {"192.0.2.1/32", "192.0.2.1"}}
	if len(b) != len(want) {
		t.Fatalf("parsed %v, want %v", b, want)
	}
	for i, w := range want {
		if b[i].Prefix.String() != w.prefix || b[i].Label != w.label {
			t.Errorf("entry %d = %s=%s, want %s=%s", i, b[i].Prefix, b[i].Label, w.prefix, w.label)
		}
	}
	// First match wins.
	if label, _ := b.match(netip.MustParseAddr("10.1.2.3")); label != "internal net" {
		t.Errorf("label = %q", label)
	}
	for _, bad := range []string{"10.0.0.0/33=x", "not-an-ip=x", "10.0.0.0:8=x"} {
		if err := b.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded, want an error", bad)
		}
	}
}

// TestBanRoutes: /build answers with an event, other routes with a plain
// 403 page, /health and /versions are never banned (upstream test: label
// "local").
func TestBanRoutes(t *testing.T) {
	var ban BanList
	if err := ban.UnmarshalText([]byte("127.0.0.0/8=local,::1/128=local")); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Config{APIOnly: true, AccessConfig: AccessConfig{BanNetworks: ban}}, Deps{})
	_, body := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true", "Accept", "*/*")
	if want := `data: {"phase": "failed", "status_code": 403, "message": "Requests from local are not allowed\n"}` + "\n\n"; body != want {
		t.Errorf("/build = %q, want %q (the ban comes before the Accept check)", body, want)
	}
	for path, want := range map[string]int{"/api/repoproviders": 403, "/": 403, "/health": 200, "/versions": 200} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if want == 403 && strings.TrimSpace(string(b)) != "Requests from local are not allowed" {
			t.Errorf("GET %s body = %q", path, b)
		}
	}
}

// TestSpecPatternRows are upstream's rows (binderhub/tests/test_repoproviders.py,
// spec §9.3) for spec jupyterhub/zero-to-jupyterhub-k8s/v0.4.
func TestSpecPatternRows(t *testing.T) {
	const spec = "jupyterhub/zero-to-jupyterhub-k8s/v0.4"
	tests := []struct {
		name                      string
		spec                      string
		banned, allowed, highQuot string
		wantBanned, wantHigh      bool
	}{
		{name: "banned other", banned: `^yuvipanda.*`},
		{name: "banned match", banned: `^jupyterhub.*`, wantBanned: true},
		{name: "allowed match", allowed: `^jupyterhub.*`},
		{name: "allowed other", allowed: `^yuvipanda.*`, wantBanned: true},
		{name: "allowed and banned", allowed: `^jupyterhub.*`, banned: `.*zero-to-.*`, wantBanned: true},
		{name: "high quota other", highQuot: `^yuvipanda.*`},
		{name: "high quota match", highQuot: `^jupyterhub.*`, wantHigh: true},
		{name: "case-insensitive", spec: "AABBCcc/DDeeFF/v0.4", banned: `.*ddEEff.*`, wantBanned: true},
		{name: "case-insensitive 2", spec: "AABBCcc/DDeeFF/v0.4", banned: `.*ddEEFF.*`, wantBanned: true},
		{name: "anchored at the start only", banned: `zero`},
		{name: "not anchored at the end", banned: `jupyterhub/zero`, wantBanned: true},
		{name: "alternation stays anchored", banned: `x|zero`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c AccessConfig
			for _, p := range []struct {
				dst *SpecPatterns
				src string
			}{{&c.BannedSpecs, tc.banned}, {&c.AllowedSpecs, tc.allowed}, {&c.HighQuotaSpecs, tc.highQuot}} {
				if err := p.dst.UnmarshalText([]byte(p.src)); err != nil {
					t.Fatal(err)
				}
			}
			s := tc.spec
			if s == "" {
				s = spec
			}
			if got := c.specBanned(s); got != tc.wantBanned {
				t.Errorf("specBanned(%q) = %v, want %v", s, got, tc.wantBanned)
			}
			if got := c.highQuota(s); got != tc.wantHigh {
				t.Errorf("HighQuota(%q) = %v, want %v", s, got, tc.wantHigh)
			}
		})
	}
}

func TestSpecPatternSyntax(t *testing.T) {
	var p SpecPatterns
	if err := p.UnmarshalText([]byte(`^a{1,3}/,^[x,y]z,^c\,d, ,^e`)); err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), `^a{1,3}/,^[x,y]z,^c\,d,^e`; got != want {
		t.Errorf("patterns = %q, want %q", got, want)
	}
	for spec, want := range map[string]bool{"aaa/x": true, "aaaa/x": false, ",z": true, "c,d": true, "E": true, "f": false} {
		if got := p.matchAny(spec); got != want {
			t.Errorf("matchAny(%q) = %v, want %v", spec, got, want)
		}
	}
	for _, bad := range []string{`^(?!jupyterhub)`, `(?<=a)b`, `(a)\1`, `^(?=x)`} {
		err := p.UnmarshalText([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), "look-around or back-reference") {
			t.Errorf("UnmarshalText(%q) = %v, want a look-around error", bad, err)
		}
	}
	if err := p.UnmarshalText([]byte(`^(unclosed`)); err == nil {
		t.Error("an invalid pattern was accepted")
	}
}

func TestBannedSpecEvent(t *testing.T) {
	var banned SpecPatterns
	if err := banned.UnmarshalText([]byte(`^org/`)); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Config{APIOnly: true, AccessConfig: AccessConfig{BannedSpecs: banned}}, Deps{})
	_, body := get(t, ts.URL, "/build/gh/ORG/repo/HEAD/?build_only=true")
	want := `data: {"phase": "failed", "message": "Sorry, ORG/repo/HEAD is not allowed to launch. Please contact admins for more info!"}` + "\n\n"
	if body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
	// A parse error is reported before the ban (§2 steps 9, 10).
	_, body = get(t, ts.URL, "/build/gh/org?build_only=true")
	if !strings.Contains(body, "Spec is not of the form") {
		t.Errorf("body = %q, want the parse error", body)
	}
}

func TestClientIP(t *testing.T) {
	cfg := AccessConfig{TrustedProxies: mustNetworks(t, "10.0.0.0/8,fd00::/8")}
	tests := []struct {
		name   string
		remote string
		header []string
		want   string
	}{
		{"peer", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"untrusted peer's header ignored", "192.0.2.1:1234", []string{"X-Forwarded-For", "198.51.100.9"}, "192.0.2.1"},
		{"untrusted peer's X-Real-Ip ignored", "192.0.2.1:1234", []string{"X-Real-Ip", "198.51.100.9"}, "192.0.2.1"},
		{"trusted proxy", "10.1.2.3:1234", []string{"X-Forwarded-For", "198.51.100.9"}, "198.51.100.9"},
		{"rightmost untrusted hop", "10.1.2.3:1234", []string{"X-Forwarded-For", "6.6.6.6, 198.51.100.9, 10.9.9.9"}, "198.51.100.9"},
		{"only proxies", "10.1.2.3:1234", []string{"X-Forwarded-For", "10.0.0.5"}, "10.0.0.5"},
		{"garbage hop stops the walk", "10.1.2.3:1234", []string{"X-Forwarded-For", "198.51.100.9, nonsense"}, "10.1.2.3"},
		{"X-Real-Ip from a proxy", "10.1.2.3:1234", []string{"X-Real-Ip", "198.51.100.7"}, "198.51.100.7"},
		{"invalid X-Real-Ip", "10.1.2.3:1234", []string{"X-Real-Ip", "hello"}, "10.1.2.3"},
		{"IPv6 proxy", "[fd00::1]:80", []string{"X-Forwarded-For", "2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer", "[::ffff:192.0.2.1]:80", nil, "192.0.2.1"},
		{"zoned hop", "[fd00::1]:80", []string{"X-Forwarded-For", "fe80::7%eth0"}, "fe80::7"},
		{"zoned X-Real-Ip", "10.1.2.3:1234", []string{"X-Real-Ip", "fe80::7%25eth0"}, "fe80::7"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for i := 0; i+1 < len(tc.header); i += 2 {
			r.Header.Set(tc.header[i], tc.header[i+1])
		}
		if got := cfg.clientIP(r).String(); got != tc.want {
			t.Errorf("%s: clientIP = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// IPv6 clients count by their /64 in rate limits, build limits and bans:
// a subscriber rotating addresses within it stays one client.
func TestIPv6ClientsBySlash64(t *testing.T) {
	s := New(t.Context(), Config{}, Deps{})
	key := func(remote string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		return s.clientKey(r, nil)
	}
	if a, b := key("[2001:db8:1:2::1]:80"), key("[2001:db8:1:2:ffff::9]:80"); a != b || a != "ip:2001:db8:1:2::/64" {
		t.Errorf("keys of one /64: %q and %q, want both ip:2001:db8:1:2::/64", a, b)
	}
	if a, b := key("[2001:db8:1:2::1]:80"), key("[2001:db8:1:3::1]:80"); a == b {
		t.Errorf("two /64s share the key %q", a)
	}
	if got := key("192.0.2.1:80"); got != "ip:192.0.2.1" {
		t.Errorf("IPv4 key = %q, want ip:192.0.2.1", got)
	}
	var bans BanList
	if err := bans.UnmarshalText([]byte("2001:db8:1:2::1=abuser")); err != nil {
		t.Fatal(err)
	}
	if label, ok := bans.match(netip.MustParseAddr("2001:db8:1:2:abcd::1")); !ok || label != "abuser" {
		t.Errorf("another address of a banned address's /64: Match = %q, %v, want abuser, true", label, ok)
	}
}

// TestCORSPreflight is the preflight a browser sends before the
// binderhub-client's cross-origin fetch with an Authorization header.
func TestCORSPreflight(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	tests := []struct {
		name, allow, origin, wantOrigin string
	}{
		{"wildcard", "*", "https://hub.example.org", "*"},
		{"one origin", "https://hub.example.org", "https://hub.example.org", "https://hub.example.org"},
		{"listed origin echoed", "https://a.example, https://hub.example.org", "https://hub.example.org", "https://hub.example.org"},
		{"unlisted origin", "https://a.example,https://b.example", "https://evil.example", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Config{APIOnly: true, AccessConfig: AccessConfig{CorsAllowOrigin: tc.allow}}, Deps{Images: present(image)})
			req, _ := http.NewRequest(http.MethodOptions, ts.URL+"/build/gh/org/repo/HEAD?build_only=true", nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "GET")
			req.Header.Set("Access-Control-Request-Headers", "authorization,cache-control")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tc.wantOrigin == "" {
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
					t.Errorf("Access-Control-Allow-Origin = %q for an unlisted origin", got)
				}
				return
			}
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("preflight status = %d, want 204", resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tc.wantOrigin)
			}
			allowed := resp.Header.Get("Access-Control-Allow-Headers")
			for _, h := range []string{"authorization", "cache-control"} {
				if !strings.Contains(allowed, h) {
					t.Errorf("Access-Control-Allow-Headers = %q, want %s allowed", allowed, h)
				}
			}
			if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "GET") {
				t.Errorf("Access-Control-Allow-Methods = %q", m)
			}
			if tc.wantOrigin != "*" && !strings.Contains(resp.Header.Get("Vary"), "Origin") {
				t.Errorf("Vary = %q, want Origin", resp.Header.Get("Vary"))
			}
			// The stream itself carries the origin and upstream's headers.
			resp, body := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true", "Origin", tc.origin)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
				t.Errorf("stream Access-Control-Allow-Origin = %q, want %q", got, tc.wantOrigin)
			}
			if got := resp.Header.Get("Access-Control-Allow-Headers"); got != "cache-control" {
				t.Errorf("stream Access-Control-Allow-Headers = %q, want cache-control", got)
			}
			if !strings.Contains(body, `"phase": "ready"`) {
				t.Errorf("stream = %q", body)
			}
		})
	}
	t.Run("no CORS configured", func(t *testing.T) {
		ts := newTestServer(t, Config{APIOnly: true}, Deps{})
		req, _ := http.NewRequest(http.MethodOptions, ts.URL+"/build/gh/org/repo/HEAD", nil)
		req.Header.Set("Origin", "https://hub.example.org")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(string(b), `"status_code": 405`) {
			t.Errorf("OPTIONS without CORS = %v %s, want upstream's 405 event and no CORS headers", resp.Header, b)
		}
	})
}

// TestCheckOrder pins the order of §2: ban, Accept, auth, build token, rate
// limit, provider.
func TestCheckOrder(t *testing.T) {
	ta := &auth.TokenAuth{}
	cfg := Config{APIOnly: true, AccessConfig: AccessConfig{RateLimit: 1, RateLimitPeriod: 3600e9}}
	ts := newTestServer(t, cfg, Deps{Auth: ta})
	tests := []struct {
		name, path string
		header     []string
		want       string
	}{
		{"Accept before auth", "/build/gh/org/repo/HEAD", []string{"Accept", "*/*"}, `"status_code": 400, "message": "Missing Accept header: text/event-stream\n"`},
		{"auth before provider", "/build/nope/x", nil, `"status_code": 403, "message": "Forbidden\n"`},
	}
	for _, tc := range tests {
		_, body := get(t, ts.URL, tc.path, tc.header...)
		if !strings.Contains(body, tc.want) {
			t.Errorf("%s: body = %q, want %s", tc.name, body, tc.want)
		}
	}
	ts = newTestServer(t, cfg, Deps{})
	for i, want := range []string{"No provider found for prefix nope", `"status_code": 429`} {
		if _, body := get(t, ts.URL, "/build/nope/x"); !strings.Contains(body, want) {
			t.Errorf("request %d: body = %q, want %s (rate limit before the provider)", i, body, want)
		}
	}
}

func TestAccessConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  AccessConfig
		want string
	}{
		{AccessConfig{RateLimit: -1}, "BINDERBUILD_RATE_LIMIT"},
		{AccessConfig{RateLimit: 5}, "BINDERBUILD_RATE_LIMIT_PERIOD"},
		{AccessConfig{RateLimit: 5, RateLimitPeriod: 3600e9}, ""},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func writeTokens(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
