package events

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/org/repo", "https://github.com/org/repo"},
		{"https://user:pass@github.com/org/repo", "https://redacted@github.com/org/repo"},
		{"https://ghp_abc@github.com/x", "https://redacted@github.com/x"},
		{"clone https://a:b@h1/x and http://c:d@h2:8080?q", "clone https://redacted@h1/x and http://redacted@h2:8080?q"},
		{"/build/git/https%3A%2F%2Fuser%3Apw%40example.com%2Frepo/main", "/build/git/https%3A%2F%2Fredacted%40example.com%2Frepo/main"},
		{"https%3a%2f%2fu%3Ap%40h%2Fr", "https%3a%2f%2fredacted%40h%2Fr"},
		{"git@github.com:org/repo", "git@github.com:org/repo"},
		{"/build/gh/o/r/HEAD?build_only=true&access_token=s3cret&x=1", "/build/gh/o/r/HEAD?build_only=true&access_token=redacted&x=1"},
		{"/x?token=abc", "/x?token=redacted"},
		{"/x?client_secret=abc&key=k", "/x?client_secret=redacted&key=redacted"},
		{"Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "Authorization: Bearer redacted"},
		{"token ghp_0123456789abcdefghij", "token redacted"},
		{"no token here", "no token here"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"https://u:p@h/x", "a%3A%2F%2Fb%40c", "://@", "%3a%2f%2f%40", "?token=&key="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Redact(s)
		if Redact(r) != r {
			t.Fatalf("Redact is not idempotent on %q: %q then %q", s, r, Redact(r))
		}
		// The word checks only skip expressions that cannot match.
		slow := redactUserinfo(s)
		slow = sensitiveQuery.ReplaceAllString(slow, "${1}"+redacted)
		slow = bearer.ReplaceAllString(slow, "${1}${2}"+redacted)
		if s != "" && r != slow {
			t.Fatalf("Redact(%q) = %q, the expressions alone give %q", s, r, slow)
		}
	})
}

func TestRedactorLogs(t *testing.T) {
	var buf bytes.Buffer
	r := NewRedactor("ghp_secretvalue", "", "ab")
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: r.ReplaceAttr}))
	log.Info("msg", "url", "https://u:pw@h/x", "error", errors.New("auth ghp_secretvalue refused"), "n", 1, "word", "about")
	wrapped := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil))).With("token", "ghp_secretvalue")
	wrapped.Info("ghp_secretvalue in message", slog.Group("g", "u", "https://a:b@h"))
	out := buf.String()
	for _, s := range []string{"ghp_secretvalue", "u:pw", "a:b@"} {
		if strings.Contains(out, s) {
			t.Errorf("log %s contains %q", out, s)
		}
	}
	if !strings.Contains(out, `"n":1`) || !strings.Contains(out, `"word":"about"`) {
		t.Errorf("log %s lost unrelated values", out)
	}
}
