// Package builder runs image builds: the Executor interface, the Shared
// decorator that gives every request for the same image one build, and the
// executors (Kubernetes build pods).
package builder

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// Executor runs one build to completion, appending progress events to log.
// It returns nil when the image was built and pushed, an *events.Failure
// when the build failed, or another error when it could not be watched.
type Executor interface {
	Run(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error
}

// Shared runs at most one build per build name. Every request for a build
// already running follows the same log; the build runs on the server's
// context, so a client leaving never cancels it.
type Shared struct {
	exec Executor
	ctx  context.Context // server lifetime: builds outlive their requests
	// keep is how long a successful build is still handed out, so that a
	// request racing the registry cache attaches instead of rebuilding.
	keep time.Duration
	// metrics, events and log observe each build once (see Option).
	metrics *Metrics
	emitter EventEmitter
	log     *slog.Logger

	mu     sync.Mutex
	builds map[string]*events.Log
	wg     sync.WaitGroup
}

// Option adds observers to a Shared.
type Option func(*Shared)

// WithMetrics counts every build in m exactly once when it ends.
func WithMetrics(m *Metrics) Option { return func(s *Shared) { s.metrics = m } }

// WithEvents emits the binderbuild.org/build lifecycle events of every
// build to e.
func WithEvents(e EventEmitter) Option { return func(s *Shared) { s.emitter = e } }

// WithLogger logs every build's transitions (queued, started, phase
// changes, end with cause) to l.
func WithLogger(l *slog.Logger) Option { return func(s *Shared) { s.log = l } }

// NewShared returns a Shared running builds with exec on ctx. Successful
// builds stay attachable for keep after they finish. Without options builds
// are not observed.
func NewShared(ctx context.Context, exec Executor, keep time.Duration, opts ...Option) *Shared {
	s := &Shared{exec: exec, ctx: ctx, keep: keep, builds: make(map[string]*events.Log)}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Build returns the log of the build for req.Name, starting it if needed.
// The log begins with the "waiting" event.
func (s *Shared) Build(ctx context.Context, req binderbuild.BuildRequest) (*events.Log, error) {
	log, _, err := s.Join(ctx, req)
	return log, err
}

// Join is Build that also reports whether the request joined a build
// already running, or one that succeeded less than keep ago, instead of
// starting one.
func (s *Shared) Join(_ context.Context, req binderbuild.BuildRequest) (log *events.Log, joined bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if log, ok := s.builds[req.Name]; ok {
		return log, true, nil
	}
	log = events.NewLog(0)
	log.Append(events.Waiting)
	s.builds[req.Name] = log
	s.wg.Add(1)
	go s.run(req, log, newTracker(req, s.metrics, s.emitter, s.log, time.Now))
	return log, false, nil
}

// run runs one build. Its end is counted before the log finishes, so that
// a client seeing the last event also sees the build counted.
func (s *Shared) run(req binderbuild.BuildRequest, log *events.Log, tr *tracker) {
	defer s.wg.Done()
	stop, followed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(followed)
		tr.follow(log, stop)
	}()
	err := s.exec.Run(withTracker(s.ctx, tr), req, log)
	close(stop)
	<-followed
	if s.ctx.Err() != nil && errors.Is(err, s.ctx.Err()) {
		tr.abandon(err)
	} else {
		tr.end(err)
	}
	log.Finish(err)
	if err != nil || s.keep <= 0 {
		s.forget(req.Name, log)
		return
	}
	time.AfterFunc(s.keep, func() { s.forget(req.Name, log) })
}

func (s *Shared) forget(name string, log *events.Log) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.builds[name] == log {
		delete(s.builds, name)
	}
}

// Running is the number of builds started and not yet finished or forgotten.
func (s *Shared) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.builds)
}

// Wait blocks until every build started has returned; cancel the context
// given to NewShared first to make them stop.
func (s *Shared) Wait() { s.wg.Wait() }

// Unavailable is the executor used when none is configured: every build fails
// at once with its message.
type Unavailable string

// Run fails the build with the configured message.
func (u Unavailable) Run(context.Context, binderbuild.BuildRequest, *events.Log) error {
	return events.Fail(events.CauseFailed, string(u))
}
