package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

// slogAccessLine is the line the logger writes for l at t: the format
// appendJSON must match byte for byte.
func slogAccessLine(t *testing.T, l accessLine, at time.Time) string {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rec := slog.NewRecord(at, slog.LevelInfo, "request", 0)
	rec.AddAttrs(l.attrs()...)
	if err := log.Handler().Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestAccessLineMatchesTheLogger(t *testing.T) {
	at := time.Date(2026, 12, 5, 15, 4, 5, 123456789, time.UTC)
	for _, l := range []accessLine{
		{method: "GET", path: "/build/gh/org/repo/HEAD?build_only=true", status: 200, bytes: 187, duration: 1234567 * time.Nanosecond, client: netip.MustParseAddr("127.0.0.1"), id: "0a1b2c-17"},
		{method: "POST", path: "/x\"y\\z\n\r\t\x01\x7f", status: 404, bytes: 0, duration: 0, id: "é\u2028\u2029\xff<&>"},
		{method: "GET", path: "/", status: 500, bytes: 1 << 40, duration: 90 * time.Minute, client: netip.MustParseAddr("2001:db8::1")},
	} {
		got := string(l.appendJSON(nil, at))
		if want := slogAccessLine(t, l, at); got != want {
			t.Errorf("access line\n%s, the logger writes\n%s", got, want)
		}
	}
}

func FuzzAccessLine(f *testing.F) {
	f.Add("GET", "/build/gh/o/r/HEAD", "id-1", int64(1500))
	f.Add("\x00\"", "\xed\xa0\x80\u2028", "\\", int64(-1))
	f.Fuzz(func(t *testing.T, method, path, id string, micros int64) {
		at := time.Unix(1733400000, 0).UTC()
		l := accessLine{method: method, path: path, id: id, status: 200, duration: time.Duration(micros) * time.Microsecond}
		if got, want := string(l.appendJSON(nil, at)), slogAccessLine(t, l, at); got != want {
			t.Fatalf("access line\n%q, the logger writes\n%q", got, want)
		}
	})
}
