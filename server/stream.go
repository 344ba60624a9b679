package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binderbuild/binderbuild/events"
)

// streams follows builds for /build clients, whatever the protocol: an
// HTTP/1.1 connection is parked, taken over and written by the build's
// fan-out (park.go); any other stream (HTTP/2, a test recorder) is written
// on its handler's goroutine (copyLog). Both send the same bytes,
// heartbeats included, and both end the stream the same way: leave runs,
// then the access log line is written (streamEnd).
type streams struct {
	ctx  context.Context // the server's lifetime: parked streams end with it
	beat *heartbeat
	// stall is Config.ClientStallTimeout.
	stall time.Duration
	// result is the last event of a followed build: ready or failed.
	result func(ctx context.Context, err error, image string) events.Event

	mu      sync.Mutex
	fanouts map[*events.Log]*fanout // running fan-outs of parked clients, by build
	// parked counts the connections the fan-outs hold; following counts
	// every client following a build, parked or not.
	parked, following atomic.Int64
}

func newStreams(ctx context.Context, heartbeatEvery, stall time.Duration, result func(context.Context, error, string) events.Event) *streams {
	return &streams{
		ctx:     ctx,
		beat:    newHeartbeat(ctx, heartbeatEvery),
		stall:   stall,
		result:  result,
		fanouts: make(map[*events.Log]*fanout),
	}
}

// streamEnd is an optional upgrade of the ResponseWriter of a /build
// request, found through Unwrap: the access log, which writes its line
// when the stream really ends rather than when a parked request's handler
// returns. EndLater is called at the take-over; the stream calls the
// function it returns once, with the bytes of the body, when it ends.
type streamEnd interface {
	EndLater() func(written int64)
}

// endLater returns the streamEnd hook of w, nil when w has none.
func endLater(w http.ResponseWriter) func(int64) {
	for {
		switch v := w.(type) {
		case streamEnd:
			return v.EndLater()
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
}

// follow streams the build's log to the client until the build ends (with
// its result event) or the client leaves, then calls leave. A build that
// has started goes on without the client. When the connection is parked,
// follow returns at once and the fan-out does the rest.
func (s *streams) follow(r *http.Request, st *stream, log *events.Log, image string, leave func()) {
	s.following.Add(1)
	if s.park(r, st, log, image, leave) {
		return
	}
	defer s.following.Add(-1)
	defer leave()
	done, err := s.copyLog(r.Context(), st, log)
	if done {
		_ = st.send(s.result(r.Context(), err, image))
	}
}

// copyLog writes the build's log to st on the caller's goroutine until the
// build ends (done, with the build's error), the client leaves or the
// server stops, with a heartbeat whenever the log is quiet between two
// ticks. It sends no result
// event: a launch goes on after a successful build.
func (s *streams) copyLog(ctx context.Context, st *stream, log *events.Log) (done bool, err error) {
	for cursor := 0; ; {
		evs, next, done, changed := log.Read(cursor)
		for _, e := range evs {
			if st.write(e) != nil {
				return false, nil
			}
		}
		cursor = next
		if done {
			_, err := log.Result()
			return true, err
		}
		if st.flush() != nil {
			return false, nil
		}
		select {
		case <-changed:
		case <-s.beat.C():
			if st.heartbeat() != nil {
				return false, nil
			}
		case <-ctx.Done():
			return false, nil
		case <-s.ctx.Done(): // as parked streams: the server stops
			return false, nil
		}
	}
}

// follow streams the build's log to the client of a /build request (see
// streams.follow); with lr, the server is launched after a successful
// build, on this goroutine whatever the protocol.
func (s *Server) follow(r *http.Request, st *stream, log *events.Log, image string, lr *launchReq, leave func()) {
	if lr == nil {
		s.streams.follow(r, st, log, image, leave)
		return
	}
	s.streams.following.Add(1)
	defer s.streams.following.Add(-1)
	defer leave()
	done, err := s.streams.copyLog(r.Context(), st, log)
	switch {
	case !done:
	case err == nil:
		s.launchAfter(r, st, lr, false)
	default:
		_ = st.send(s.resultEvent(r.Context(), err, image))
	}
}
