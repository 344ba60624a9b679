package events

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
)

// redacted replaces a secret in logs, events and metric labels.
const redacted = "redacted"

// bearer matches an Authorization-style credential written out in a text.
var bearer = regexp.MustCompile(`(?i)\b(bearer|token)(\s+)[A-Za-z0-9._~+/=-]{16,}`)

// Redact removes credentials from s: the user-info part of every URL
// ("https://user:password@host", also percent-encoded as in /build/git
// specs: "https%3A%2F%2Fuser%3Apw%40host"), the values of query parameters
// named like secrets (token, access_token, client_secret, password, key,
// sig, code, …) and long "Bearer"/"token" credentials. Everything else is
// kept, so a redacted repository URL still names its host and path.
//
// It runs on every log line and event, so a text without the bytes that
// each credential form needs ("@" or "%" for user info, "?" or "&" for
// query values, white space for bearer credentials) costs one scan and
// no allocation.
func Redact(s string) string {
	var has [256]bool
	for i := 0; i < len(s); i++ {
		has[s[i]] = true
	}
	if has['@'] || has['%'] {
		s = redactUserinfo(s)
	}
	if has['?'] || has['&'] {
		s = redactQuery(s)
	}
	if len(s) >= 16 && (has[' '] || has['\t'] || has['\n'] || has['\r'] || has['\f']) && containsFold(s, bearerWords) {
		s = bearer.ReplaceAllString(s, "${1}${2}"+redacted)
	}
	return s
}

// bearerWords are the words without which bearer cannot match.
var bearerWords = []string{"bearer", "token"}

// containsFold reports whether s holds one of the lower-case ASCII words,
// ignoring ASCII case.
func containsFold(s string, words []string) bool {
	for _, w := range words {
		if indexFold(s, w) >= 0 {
			return true
		}
	}
	return false
}

// redactQuery replaces the value of every "?name=" or "&name=" parameter
// whose name says it holds a secret (see secretParam) with "redacted". The
// value ends at "&", white space, a quote, "#", "<" or ">".
func redactQuery(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '?' && s[i] != '&' {
			continue
		}
		j := i + 1
		for j < len(s) && paramNameByte(s[j]) {
			j++
		}
		if j == len(s) || s[j] != '=' || !secretParam(s[i+1:j]) {
			continue
		}
		end := j + 1
		for end < len(s) && !valueEnd(s[end]) {
			end++
		}
		b.WriteString(s[last : j+1])
		b.WriteString(redacted)
		last, i = end, end-1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// secretWords end the names of secret query parameters ("access_token",
// "client_secret"); shortNames are secret on their own ("key", "sig").
var (
	secretWords = []string{"token", "secret", "password", "passwd", "apikey", "api_key", "signature", "credential", "credentials"}
	shortNames  = []string{"key", "sig", "auth", "code"}
)

// secretParam reports whether a query parameter name, made of
// paramNameBytes, names a secret, ignoring ASCII case.
func secretParam(name string) bool {
	for _, w := range shortNames {
		if len(name) == len(w) && indexFold(name, w) == 0 {
			return true
		}
	}
	for _, w := range secretWords {
		if len(name) >= len(w) && indexFold(name[len(name)-len(w):], w) == 0 {
			return true
		}
	}
	return false
}

func paramNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

func valueEnd(c byte) bool {
	switch c {
	case '&', ' ', '\t', '\n', '\f', '\r', '"', '\'', '#', '<', '>':
		return true
	}
	return false
}

// redactUserinfo replaces the user info of every "scheme://" or
// percent-encoded "scheme%3A%2F%2F" URL in s.
func redactUserinfo(s string) string {
	var b strings.Builder
	i := 0
	for {
		j, n := nextSchemeSep(s, i)
		if j < 0 {
			if i == 0 {
				return s
			}
			b.WriteString(s[i:])
			return b.String()
		}
		start := j + n
		end := authorityEnd(s, start)
		b.WriteString(s[i:start])
		auth := s[start:end]
		if at := lastAt(auth); at >= 0 {
			b.WriteString(redacted)
			b.WriteString(auth[at:])
		} else {
			b.WriteString(auth)
		}
		i = end
	}
}

// nextSchemeSep finds the next "://" or "%3A%2F%2F" from i: its index and
// length, or -1.
func nextSchemeSep(s string, i int) (int, int) {
	plain := strings.Index(s[i:], "://")
	enc := indexFold(s[i:], "%3a%2f%2f")
	switch {
	case plain < 0 && enc < 0:
		return -1, 0
	case enc < 0 || (plain >= 0 && plain < enc):
		return i + plain, 3
	default:
		return i + enc, 9
	}
}

// authorityEnd is the end of the URL authority starting at i.
func authorityEnd(s string, i int) int {
	for j := i; j < len(s); j++ {
		switch c := s[j]; c {
		case '/', '?', '#', ' ', '\t', '\n', '\r', '"', '\'', '<', '>', '\\', '`':
			return j
		case '%':
			if j+2 < len(s) {
				switch strings.ToLower(s[j+1 : j+3]) {
				case "2f", "3f", "23", "20", "22":
					return j
				}
			}
		}
	}
	return len(s)
}

// lastAt is the index of the last "@" or "%40" in auth, or -1.
func lastAt(auth string) int {
	at := strings.LastIndexByte(auth, '@')
	if enc := strings.LastIndex(auth, "%40"); enc > at {
		at = enc
	}
	return at
}

// indexFold is strings.Index for an ASCII lower-case sub, ignoring ASCII
// case in s (byte offsets stay those of s).
func indexFold(s, lowerSub string) int {
	for i := 0; i+len(lowerSub) <= len(s); i++ {
		j := 0
		for ; j < len(lowerSub); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerSub[j] {
				break
			}
		}
		if j == len(lowerSub) {
			return i
		}
	}
	return -1
}

// Redactor removes credentials (see Redact) and a set of known secret
// values, such as configured access tokens, from texts. A nil *Redactor only
// applies Redact.
type Redactor struct {
	secrets []string
}

// NewRedactor returns a Redactor for the given secret values; empty values
// and values shorter than 4 bytes (which would blank out ordinary words) are
// ignored.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// String returns s without credentials or known secrets.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, sec := range r.secrets {
			if strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, redacted)
			}
		}
	}
	return Redact(s)
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that redacts string and
// error values (and values formatted by fmt) of every attribute.
func (r *Redactor) ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.String(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, r.String(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, r.String(x.String()))
		case []byte:
			return slog.String(a.Key, r.String(string(x)))
		}
	}
	return a
}

// Handler wraps h so that the message and every attribute, including those
// added with With, are redacted. Use it when the handler's own options cannot
// be set.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if rh, ok := h.(redactHandler); ok && rh.r.same(r) {
		return h // already redacted: a second pass would find nothing
	}
	return redactHandler{h: h, r: r}
}

// same reports whether r and o remove the same secrets.
func (r *Redactor) same(o *Redactor) bool {
	if r == nil || o == nil {
		return r == o
	}
	return slices.Equal(r.secrets, o.secrets)
}

type redactHandler struct {
	h slog.Handler
	r *Redactor
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h redactHandler) attr(a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	}
	return h.r.ReplaceAttr(nil, a)
}

func (h redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.attr(a)
	}
	return redactHandler{h: h.h.WithAttrs(out), r: h.r}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h: h.h.WithGroup(name), r: h.r}
}
