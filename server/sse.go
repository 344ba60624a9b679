package server

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/binderbuild/binderbuild/events"
)

var (
	allowCacheControl = []string{"cache-control"}
	eventStream       = []string{"text/event-stream"}
	noCache           = []string{"no-cache"}
	no                = []string{"no"}
)

var (
	dataPrefix     = []byte("data: ")
	eventEnd       = []byte("\n\n")
	heartbeatBytes = []byte(":heartbeat\n\n")
)

// stream writes server-sent events in BinderHub's framing: one
// "data: <json>" line per event, no id, event or retry fields.
type stream struct {
	w       http.ResponseWriter
	rc      http.ResponseController
	written bool // something was written: the connection can no longer be parked
}

// startStream sets the event-stream headers. The status is always 200, even
// for errors, so that EventSource clients show the failed event.
func startStream(w http.ResponseWriter) *stream {
	// Shared, never modified value slices: setting them allocates nothing.
	h := w.Header()
	h["Access-Control-Allow-Headers"] = allowCacheControl
	h["Content-Type"] = eventStream
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = no                             // nginx would otherwise buffer the stream
	st := &stream{w: w, rc: *http.NewResponseController(w)} // one allocation for both
	_ = st.rc.SetWriteDeadline(time.Time{})                 // a server-wide write timeout would cut long builds
	return st
}

// write buffers one event; flush sends it.
func (s *stream) write(e events.Event) error {
	s.written = true
	if _, err := s.w.Write(dataPrefix); err != nil {
		return err
	}
	if _, err := s.w.Write(e.Data); err != nil {
		return err
	}
	_, err := s.w.Write(eventEnd)
	return err
}

func (s *stream) flush() error { return s.rc.Flush() }

// send writes and flushes one event.
func (s *stream) send(e events.Event) error {
	if err := s.write(e); err != nil {
		return err
	}
	return s.flush()
}

// end writes the stream's last event without flushing it: the handler
// returns next, and net/http then sends the rest of the response in one
// write (a warm cache hit: headers, event and end in one system call).
func (s *stream) end(e events.Event) error { return s.write(e) }

// frame is e as a stream sends it: framed once, an event that ends many
// streams (a cache hit's ready) is written in one call (endFrame).
func frame(e events.Event) []byte { return slices.Concat(dataPrefix, e.Data, eventEnd) }

// endFrame is end for an event already framed.
func (s *stream) endFrame(f []byte) error {
	s.written = true
	_, err := s.w.Write(f)
	return err
}

func (s *stream) heartbeat() error {
	s.written = true
	if _, err := s.w.Write(heartbeatBytes); err != nil {
		return err
	}
	return s.flush()
}

// heartbeat is one ticker shared by every open stream: each tick closes the
// current channel, waking all waiting streams at once, so a waiting client
// costs no timer of its own.
type heartbeat struct {
	ch atomic.Pointer[chan struct{}]
}

func newHeartbeat(ctx context.Context, every time.Duration) *heartbeat {
	h := &heartbeat{}
	ch := make(chan struct{})
	h.ch.Store(&ch)
	go h.run(ctx, every)
	return h
}

func (h *heartbeat) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			next := make(chan struct{})
			close(*h.ch.Swap(&next))
		}
	}
}

// C is closed at the next tick.
func (h *heartbeat) C() <-chan struct{} { return *h.ch.Load() }
