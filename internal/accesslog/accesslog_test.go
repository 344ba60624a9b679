package accesslog

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

// slogLine is the line slog's JSON handler writes for l at t: the format
// AppendJSON must match byte for byte.
func slogLine(t *testing.T, l Line, at time.Time) string {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rec := slog.NewRecord(at, slog.LevelInfo, Message, 0)
	rec.AddAttrs(l.Attrs()...)
	if err := log.Handler().Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestAppendJSONMatchesTheLogger(t *testing.T) {
	at := time.Date(2026, 12, 5, 15, 4, 5, 123456789, time.UTC)
	for _, l := range []Line{
		{Method: "GET", Path: "/build/gh/org/repo/HEAD?build_only=true", Status: 200, Bytes: 187, Duration: 1234567 * time.Nanosecond, Client: netip.MustParseAddr("127.0.0.1"), ID: "0a1b2c-17"},
		{Method: "POST", Path: "/x\"y\\z\n\r\t\x01\x7f", Status: 404, Bytes: 0, Duration: 0, ID: "é\u2028\u2029\xff<&>"},
		{Method: "GET", Path: "/", Status: 500, Bytes: 1 << 40, Duration: 90 * time.Minute, Client: netip.MustParseAddr("2001:db8::1")},
	} {
		got := string(l.AppendJSON(nil, at))
		if want := slogLine(t, l, at); got != want {
			t.Errorf("access line\n%s, the logger writes\n%s", got, want)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("GET", "/build/gh/o/r/HEAD", "id-1", int64(1500))
	f.Add("\x00\"", "\xed\xa0\x80\u2028", "\\", int64(-1))
	f.Fuzz(func(t *testing.T, method, path, id string, micros int64) {
		at := time.Unix(1733400000, 0).UTC()
		l := Line{Method: method, Path: path, ID: id, Status: 200, Duration: time.Duration(micros) * time.Microsecond}
		if got, want := string(l.AppendJSON(nil, at)), slogLine(t, l, at); got != want {
			t.Fatalf("access line\n%q, the logger writes\n%q", got, want)
		}
	})
}
