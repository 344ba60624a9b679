package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
)

// jwtHS256 mints a token as upstream's /v2/ page does (PyJWT, HS256).
func jwtHS256(t *testing.T, secret []byte, alg string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyBuildToken(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	exp := float64(now.Add(5 * time.Minute).Unix())
	good := map[string]any{"exp": exp, "aud": "gh/org/repo/HEAD", "origin": "my.host"}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for key, val := range good {
			c[key] = val
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name        string
		token       string
		secret      []byte
		checkOrigin bool
		ok          bool
	}{
		{"valid", jwtHS256(t, secret, "HS256", good), secret, true, true},
		{"aud list", jwtHS256(t, secret, "HS256", with("aud", []string{"x", "gh/org/repo/HEAD"})), secret, true, true},
		{"expired", jwtHS256(t, secret, "HS256", with("exp", float64(now.Unix()))), secret, true, false},
		{"no exp", jwtHS256(t, secret, "HS256", with("exp", nil)), secret, true, false},
		{"wrong audience", jwtHS256(t, secret, "HS256", with("aud", "gh/org/other/HEAD")), secret, true, false},
		{"wrong origin", jwtHS256(t, secret, "HS256", with("origin", "evil.host")), secret, true, false},
		{"wrong origin, check off", jwtHS256(t, secret, "HS256", with("origin", "evil.host")), secret, false, true},
		{"other secret", jwtHS256(t, []byte("other"), "HS256", good), secret, true, false},
		{"alg none", jwtHS256(t, secret, "none", good), secret, true, false},
		{"no secret configured", jwtHS256(t, secret, "HS256", good), nil, true, false},
		{"garbage", "a.b", secret, true, false},
	}
	for _, tc := range tests {
		err := verifyBuildToken(tc.secret, tc.token, "gh/org/repo/HEAD", "my.host", tc.checkOrigin, now)
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestRequestOrigin are upstream's rows (spec §9.5).
func TestRequestOrigin(t *testing.T) {
	for _, tc := range []struct{ origin, host, want string }{
		{"https://my.host", "my.host", "my.host"},
		{"https://my.origin", "my.host", "my.origin"},
		{"", "my.host", "my.host"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := requestOrigin(r); got != tc.want {
			t.Errorf("origin(%q, %q) = %q, want %q", tc.origin, tc.host, got, tc.want)
		}
	}
}

// TestBuildTokenRequests: a valid token exempts from the rate limit, an
// invalid one is refused with 403; the audience is the unstripped raw spec.
func TestBuildTokenRequests(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	clk := newClock()
	cfg := Config{APIOnly: true, AccessConfig: AccessConfig{RateLimit: 1, RateLimitPeriod: time.Hour,
		BuildTokenSecret: secret, BuildTokenCheckOrigin: true}}
	ts := newTestServer(t, cfg, Deps{Images: present(image), Now: clk.Now})
	host := strings.TrimPrefix(ts.URL, "http://")
	valid := jwtHS256(t, secret, "HS256", map[string]any{"exp": float64(clk.Now().Add(time.Minute).Unix()),
		"aud": "gh/org/repo/feature%2Fx/", "origin": host})
	for i := range 3 {
		_, body := get(t, ts.URL, "/build/gh/org/repo/feature%2Fx/?build_only=true&build_token="+valid)
		if !strings.Contains(body, `Could not resolve ref for gh:org/repo/feature%2Fx`) {
			t.Errorf("request %d with a valid token = %q, want it past the rate limit (to ref resolution)", i, body)
		}
	}
	_, body := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true&build_token="+valid)
	if want := `data: {"phase": "failed", "status_code": 403, "message": "Invalid build token\n"}` + "\n\n"; body != want {
		t.Errorf("token for another spec = %q, want %q", body, want)
	}
	_, body = get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true&build_token="+valid, "Origin", "https://evil.example")
	if !strings.Contains(body, "Invalid build token") {
		t.Errorf("token from another origin = %q", body)
	}
}
