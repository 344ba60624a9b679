package events

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		got  Event
		want string
	}{
		{"message", Message("waiting", "Waiting for build to start...\n"), `{"phase": "waiting", "message": "Waiting for build to start...\n"}`},
		{"status", Failed(400, "Missing Accept header: text/event-stream\n"), `{"phase": "failed", "status_code": 400, "message": "Missing Accept header: text/event-stream\n"}`},
		{"no status", Failed(0, "No provider found for prefix x\n"), `{"phase": "failed", "message": "No provider found for prefix x\n"}`},
		{"ensure_ascii", Message("unknown", "ü😀\"\\\t\x01/<>&\x7f"), `{"phase": "unknown", "message": "\u00fc\ud83d\ude00\"\\\t\u0001/<>&\u007f"}`}, // as python3 -c 'import json; print(json.dumps({"m": "\x7f"}))'

		{"invalid utf-8", Message("unknown", "a\xffb"), `{"phase": "unknown", "message": "a\ufffdb"}`},
	}
	for _, tc := range tests {
		if string(tc.got.Data) != tc.want {
			t.Errorf("%s: Data = %s, want %s", tc.name, tc.got.Data, tc.want)
		}
		if !json.Valid(tc.got.Data) {
			t.Errorf("%s: %s is not valid JSON", tc.name, tc.got.Data)
		}
	}
}

// TestNewEscapesAsPython checks the characters around the edges of
// printable ASCII against python3's json.dumps("...") (ensure_ascii=True):
// it escapes everything outside " " to "~", so DEL too.
func TestNewEscapesAsPython(t *testing.T) {
	tests := []struct{ in, want string }{
		{"\x1f", `"\u001f"`},
		{" ", `" "`},
		{"~", `"~"`},
		{"\x7f", `"\u007f"`},
		{"\u0080", `"\u0080"`},
		{"\u2028", `"\u2028"`},
	}
	for _, tc := range tests {
		got := New("", Field{"m", tc.in}).Data
		if want := `{"m": ` + tc.want + `}`; string(got) != want {
			t.Errorf("New(m=%q) = %s, want %s", tc.in, got, want)
		}
	}
}

func TestFromLogLine(t *testing.T) {
	tests := []struct {
		line, wantData, wantPhase string
	}{
		{`{"message": "Picked Git content provider.\n"}` + "\n", `{"message": "Picked Git content provider.\n"}`, ""},
		{`{"phase": "Building", "message": "Step 1/3"}`, `{"phase": "Building", "message": "Step 1/3"}`, "building"},
		{`{"phase": "failure", "message": "x"}`, `{"phase": "failure", "message": "x"}`, "failure"},
		{"Cloning into 'x'...\r\n", `{"phase": "unknown", "message": "Cloning into 'x'...\n"}`, "unknown"},
		{"{\"a\":\n1}", `{"phase": "unknown", "message": "{\"a\":\n1}\n"}`, "unknown"},
		{`{"phase": 3}`, `{"phase": 3}`, ""},
		{`{broken`, `{"phase": "unknown", "message": "{broken\n"}`, "unknown"},
		{`[1]`, `{"phase": "unknown", "message": "[1]\n"}`, "unknown"},
	}
	for _, tc := range tests {
		e := FromLogLine([]byte(tc.line))
		if string(e.Data) != tc.wantData || e.Phase != tc.wantPhase {
			t.Errorf("FromLogLine(%q) = %q %s, want %q %s", tc.line, e.Phase, e.Data, tc.wantPhase, tc.wantData)
		}
	}
}

func FuzzFromLogLine(f *testing.F) {
	for _, s := range []string{`{"phase": "building", "message": "x"}`, "plain", "{\"a\":\r1}", "\x00\xff", `{"message": "\u2028"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e := FromLogLine(line)
		if !json.Valid(e.Data) || bytes.ContainsAny(e.Data, "\r\n") {
			t.Fatalf("FromLogLine(%q) = %q: not one line of JSON", line, e.Data)
		}
	})
}
