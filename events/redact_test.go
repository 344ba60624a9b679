package events

import (
	"bytes"
	"errors"
	"log/slog"
	"regexp"
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
		// The fast paths and the hand-written query matcher give what
		// the expressions give.
		slow := redactUserinfo(s)
		slow = sensitiveQuery.ReplaceAllString(slow, "${1}"+redacted)
		slow = bearer.ReplaceAllString(slow, "${1}${2}"+redacted)
		if s != "" && r != slow {
			t.Fatalf("Redact(%q) = %q, the expressions alone give %q", s, r, slow)
		}
	})
}

// sensitiveQuery is what redactQuery does, as an expression: the oracle
// of FuzzRedact.
var sensitiveQuery = regexp.MustCompile(`(?i)([?&](?:[a-z0-9_.-]*(?:token|secret|password|passwd|apikey|api_key|signature|credential|credentials)|key|sig|auth|code)=)[^&\s"'#<>]*`)

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

// TestRedactorHandlerWrapsOnce: wrapping a handler that already redacts the
// same secrets adds no second pass; other secrets still get one.
func TestRedactorHandlerWrapsOnce(t *testing.T) {
	h := NewRedactor("ghp_secretvalue").Handler(slog.DiscardHandler)
	if again := NewRedactor("ghp_secretvalue").Handler(h); again != h {
		t.Error("a handler redacting the same secrets was wrapped again")
	}
	if other := NewRedactor("another-secret").Handler(h); other == h {
		t.Error("a handler redacting other secrets was not wrapped")
	}
}
