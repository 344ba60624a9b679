package events

import (
	"fmt"
	"sync"
)

// DefaultLogBytes bounds the events one build keeps for replay.
const DefaultLogBytes = 32 << 20

// Log is the append-only event log of one build. One writer appends; any
// number of readers follow it, each holding only a cursor, so a waiting
// client costs no goroutine or buffer here. A reader that joins late replays
// everything still held.
//
// When the events held exceed the byte bound, the oldest are dropped and a
// reader that had not seen them gets one notice in their place.
type Log struct {
	mu      sync.Mutex
	events  []Event // events[i] has absolute index first+i
	first   int
	bytes   int
	max     int
	done    bool
	err     error
	changed chan struct{} // closed and replaced on every change
}

// NewLog returns an empty log holding at most maxBytes of event data
// (DefaultLogBytes when maxBytes <= 0).
func NewLog(maxBytes int) *Log {
	if maxBytes <= 0 {
		maxBytes = DefaultLogBytes
	}
	return &Log{max: maxBytes, changed: make(chan struct{})}
}

// Append adds an event and wakes the readers. Appending to a finished log
// does nothing.
func (l *Log) Append(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.events = append(l.events, e)
	l.bytes += len(e.Data)
	if l.bytes > l.max {
		l.trim()
	}
	l.wake()
}

// Finish ends the log: nil for a successful build, else the reason it failed.
// Only the first call counts.
func (l *Log) Finish(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.done, l.err = true, err
	l.wake()
}

// Result reports whether the log is finished and with what error.
func (l *Log) Result() (done bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done, l.err
}

// Len is the absolute number of events appended so far.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first + len(l.events)
}

// Read returns the events from absolute index cursor on, the next cursor,
// whether the log is finished, and a channel closed at the next change.
// The returned slice must not be modified; it stays valid after later
// appends.
func (l *Log) Read(cursor int) (evs []Event, next int, done bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.first + len(l.events)
	if cursor < l.first {
		notice := Message("unknown", fmt.Sprintf("[%d earlier log lines dropped: build log too large]\n", l.first-cursor))
		evs = append([]Event{notice}, l.events...)
		return evs, end, l.done, l.changed
	}
	if cursor > end {
		cursor = end
	}
	evs = l.events[cursor-l.first : len(l.events) : len(l.events)]
	return evs, end, l.done, l.changed
}

// trim drops the oldest events until a quarter of the bound is free again.
// The first event (the "waiting" line) is dropped like any other.
func (l *Log) trim() {
	n := 0
	for l.bytes > l.max*3/4 && n < len(l.events)-1 {
		l.bytes -= len(l.events[n].Data)
		n++
	}
	kept := make([]Event, len(l.events)-n, cap(l.events))
	copy(kept, l.events[n:])
	l.events = kept
	l.first += n
}

func (l *Log) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}
