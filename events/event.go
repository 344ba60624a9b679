// Package events holds the build-progress events streamed to clients, the
// per-build log that replays and fans them out, and the launch-event emitter.
package events

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Event is one server-sent event: a single line of JSON.
type Event struct {
	// Phase is the event's lower-cased "phase", empty when it has none.
	Phase string
	// Data is the JSON payload, without newlines.
	Data []byte
}

// Terminal reports whether the event ends a stream by itself.
func (e Event) Terminal() bool { return e.Phase == "failed" || e.Phase == "failure" }

// Field is one key and value of an event object. Value is a string or int.
type Field struct {
	Key   string
	Value any
}

// New builds an event whose JSON has the given fields in order, encoded as
// Python's json.dumps does (", " and ": " separators, non-ASCII as \uXXXX),
// so that scripts grepping upstream BinderHub streams keep working.
func New(phase string, fields ...Field) Event {
	var b bytes.Buffer
	b.Grow(encodedSize(fields)) // one allocation when nothing needs escaping
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		writeString(&b, f.Key)
		b.WriteString(": ")
		switch v := f.Value.(type) {
		case int:
			b.WriteString(strconv.Itoa(v))
		case string:
			writeString(&b, v)
		default:
			panic("events: unsupported field type")
		}
	}
	b.WriteByte('}')
	return Event{Phase: phase, Data: b.Bytes()}
}

// encodedSize is the length of fields' JSON object when no string needs
// escaping and every int has at most 4 digits.
func encodedSize(fields []Field) int {
	n := 2
	for _, f := range fields {
		n += len(f.Key) + 6 // quotes, ": ", ", "
		switch v := f.Value.(type) {
		case string:
			n += len(v) + 2
		default:
			n += 4
		}
	}
	return n
}

// Message returns {"phase": phase, "message": message}.
func Message(phase, message string) Event {
	return New(phase, Field{"phase", phase}, Field{"message", message})
}

// Failed returns a failed event. A zero status leaves out "status_code",
// as upstream does for expected failures.
func Failed(status int, message string) Event {
	if status == 0 {
		return Message("failed", message)
	}
	return New("failed", Field{"phase", "failed"}, Field{"status_code", status}, Field{"message", message})
}

// Waiting is the event sent once before a build is submitted.
var Waiting = Message("waiting", "Waiting for build to start...\n")

// FromLogLine turns one line of repo2docker's --json-logs output into an
// event: a JSON object is forwarded verbatim, anything else is wrapped in an
// "unknown" event so that a stray "\r" or "\n" cannot split the SSE frame.
func FromLogLine(line []byte) Event {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 0 && line[0] == '{' && json.Valid(line) && bytes.IndexByte(line, '\n') < 0 && bytes.IndexByte(line, '\r') < 0 {
		var head struct {
			Phase string `json:"phase"`
		}
		_ = json.Unmarshal(line, &head) // valid JSON: a non-string phase just leaves Phase empty
		return Event{Phase: strings.ToLower(head.Phase), Data: bytes.Clone(line)}
	}
	return Message("unknown", string(line)+"\n")
}

const hex = "0123456789abcdef"

// writeString writes s as a JSON string with Python's ensure_ascii
// escaping: printable ASCII as is (runs of it in one write), everything
// else, DEL included, escaped.
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for len(s) > 0 {
		n := 0
		for n < len(s) && s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' && s[n] != '\\' {
			n++
		}
		b.WriteString(s[:n])
		if n == len(s) {
			break
		}
		r, size := utf8.DecodeRuneInString(s[n:])
		writeEscaped(b, r)
		s = s[n+size:]
	}
	b.WriteByte('"')
}

// writeEscaped writes r as json.dumps escapes it.
func writeEscaped(b *bytes.Buffer, r rune) {
	switch {
	case r == '"':
		b.WriteString(`\"`)
	case r == '\\':
		b.WriteString(`\\`)
	case r == '\n':
		b.WriteString(`\n`)
	case r == '\r':
		b.WriteString(`\r`)
	case r == '\t':
		b.WriteString(`\t`)
	case r == '\b':
		b.WriteString(`\b`)
	case r == '\f':
		b.WriteString(`\f`)
	case r > 0xffff:
		r -= 0x10000
		writeU(b, 0xd800+(r>>10))
		writeU(b, 0xdc00+(r&0x3ff))
	default:
		writeU(b, r)
	}
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hex[r>>12&0xf])
	b.WriteByte(hex[r>>8&0xf])
	b.WriteByte(hex[r>>4&0xf])
	b.WriteByte(hex[r&0xf])
}
