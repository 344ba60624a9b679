package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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
		{"nbf passed", jwtHS256(t, secret, "HS256", with("nbf", float64(now.Unix()))), secret, true, true},
		{"nbf ahead", jwtHS256(t, secret, "HS256", with("nbf", float64(now.Add(time.Minute).Unix()))), secret, true, false},
		{"iat ahead", jwtHS256(t, secret, "HS256", with("iat", float64(now.Add(time.Minute).Unix()))), secret, true, false},
		{"exp not a number", jwtHS256(t, secret, "HS256", with("exp", "soon")), secret, true, false},
		{"no aud", jwtHS256(t, secret, "HS256", with("aud", nil)), secret, true, false},
		{"wrong audience", jwtHS256(t, secret, "HS256", with("aud", "gh/org/other/HEAD")), secret, true, false},
		{"wrong origin", jwtHS256(t, secret, "HS256", with("origin", "evil.host")), secret, true, false},
		{"wrong origin, check off", jwtHS256(t, secret, "HS256", with("origin", "evil.host")), secret, false, true},
		{"other secret", jwtHS256(t, []byte("other"), "HS256", good), secret, true, false},
		{"alg none", jwtHS256(t, secret, "none", good), secret, true, false},
		{"no secret configured", jwtHS256(t, secret, "HS256", good), nil, true, false},
		{"garbage", "a.b", secret, true, false},
	}
	for _, tc := range tests {
		bt := BuildTokens{Secret: tc.secret, CheckOrigin: tc.checkOrigin, Now: func() time.Time { return now }}
		err := bt.Verify(tc.token, "gh/org/repo/HEAD", "my.host")
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestRequestOrigin are upstream's rows (spec §9.5).
func TestOrigin(t *testing.T) {
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
		if got := Origin(r); got != tc.want {
			t.Errorf("origin(%q, %q) = %q, want %q", tc.origin, tc.host, got, tc.want)
		}
	}
}

// FuzzVerify: whatever a client sends as build_token, Verify refuses it
// without panicking (nothing but the secret's holder can sign one).
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "..", "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0."} {
		f.Add(s)
	}
	bt := BuildTokens{Secret: []byte("0123456789abcdef0123456789abcdef"), CheckOrigin: true}
	f.Fuzz(func(t *testing.T, token string) {
		if err := bt.Verify(token, "gh/org/repo/HEAD", "my.host"); err != ErrInvalidBuildToken {
			t.Fatalf("Verify(%q) = %v, want ErrInvalidBuildToken", token, err)
		}
	})
}
