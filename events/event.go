// Package events holds the build-progress events streamed to clients, the
// per-build log that replays and fans them out, and the launch-event emitter.
package events

import (
	"bytes"
	"encoding/json"
	"strings"
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
	var o object
	o.b.Grow(encodedSize(fields)) // one allocation when nothing needs escaping
	for _, f := range fields {
		switch v := f.Value.(type) {
		case int:
			o.integer(f.Key, v)
		case string:
			o.str(f.Key, v)
		default:
			panic("events: unsupported field type")
		}
	}
	return Event{Phase: phase, Data: o.bytes()}
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
