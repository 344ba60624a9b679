package events

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func phases(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Phase + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestLogReplayAndFollow(t *testing.T) {
	l := NewLog(0)
	l.Append(Waiting)
	l.Append(Message("fetching", "a\n"))
	evs, next, done, changed := l.Read(0)
	if phases(evs) != "waiting fetching" || next != 2 || done {
		t.Fatalf("Read(0) = %q, %d, %v", phases(evs), next, done)
	}
	l.Append(Message("building", "b\n"))
	select {
	case <-changed:
	default:
		t.Fatal("Append did not wake the reader")
	}
	// The earlier slice is not disturbed by later appends.
	if phases(evs) != "waiting fetching" {
		t.Errorf("old slice became %q", phases(evs))
	}
	evs, next, _, _ = l.Read(next)
	if phases(evs) != "building" || next != 3 {
		t.Errorf("Read(2) = %q, %d", phases(evs), next)
	}
	boom := errors.New("boom")
	l.Finish(boom)
	l.Finish(nil)
	l.Append(Message("pushing", "late\n"))
	if done, err := l.Result(); !done || err != boom {
		t.Errorf("Result() = %v, %v, want true, boom", done, err)
	}
	evs, _, done, _ = l.Read(0)
	if phases(evs) != "waiting fetching building" || !done {
		t.Errorf("late joiner Read(0) = %q, %v", phases(evs), done)
	}
}

func TestLogTrim(t *testing.T) {
	ev := Message("building", strings.Repeat("x", 100))
	l := NewLog(10 * len(ev.Data))
	for range 11 {
		l.Append(ev)
	}
	if l.Len() != 11 {
		t.Fatalf("Len() = %d, want 11", l.Len())
	}
	evs, next, _, _ := l.Read(0)
	dropped := 11 - (len(evs) - 1)
	want := fmt.Sprintf(`{"phase": "unknown", "message": "[%d earlier log lines dropped: build log too large]\n"}`, dropped)
	if string(evs[0].Data) != want || next != 11 {
		t.Errorf("Read(0) = %s ... next %d, want %s next 11", evs[0].Data, next, want)
	}
	if len(evs)-1 > 10*3/4 {
		t.Errorf("kept %d events, want at most 7", len(evs)-1)
	}
}
