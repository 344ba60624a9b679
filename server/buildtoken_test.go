package server

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/binderbuild/binderbuild"
)

// mintBuildToken signs claims as upstream's /v2/ page does (HS256).
func mintBuildToken(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
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
	valid := mintBuildToken(t, secret, jwt.MapClaims{"exp": float64(clk.Now().Add(time.Minute).Unix()),
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
