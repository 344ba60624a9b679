// Package builder runs image builds: the Executor interface, the Shared
// decorator that gives every request for the same image one build, and the
// executors (Kubernetes build pods).
package builder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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

// Shared runs at most one build per image. Every request for a build
// already running follows the same log; the build runs on the server's
// context, so a client leaving never cancels a build that has started. A
// build still queued when its last client leaves is dropped, and each owner
// (user or client address) may start at most a few builds at once.
type Shared struct {
	exec Executor
	ctx  context.Context // server lifetime: builds outlive their requests
	// keep is how long a successful build is still handed out, so that a
	// request racing the registry cache attaches instead of rebuilding.
	keep time.Duration
	// ownerLimit bounds the builds one owner has started and not seen end
	// (WithOwnerLimit); 0: no limit.
	ownerLimit int
	// metrics, events and log observe each build once (see Option).
	metrics *Metrics
	emitter EventEmitter
	log     *slog.Logger

	mu     sync.Mutex
	builds map[string]*build // by image name: the build's identity
	owned  map[string]int    // builds running per owner
	wg     sync.WaitGroup
}

// build is one build of Shared and the clients following it.
type build struct {
	log    *events.Log
	cancel context.CancelFunc // drops the build while it is queued
	owner  string
	// followers counts the clients whose context has not ended; queued is
	// set while the build waits in the executor's queue.
	followers int
	queued    bool
	dropped   bool // cancelled while queued: no longer joined
}

// ownerLimited is the failure of a request whose owner already has as many
// builds running as allowed.
func ownerLimited(limit int) *events.Failure {
	return &events.Failure{Cause: events.CauseFailed, Event: events.Failed(http.StatusTooManyRequests, fmt.Sprintf(
		"You already have %d builds running, the most allowed at once. Wait for one of them to finish, then try again.\n", limit))}
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

// WithOwnerLimit lets one owner (BuildRequest.Owner) start at most n builds
// that run at once; joining a build does not count. 0: no limit.
func WithOwnerLimit(n int) Option { return func(s *Shared) { s.ownerLimit = n } }

// NewShared returns a Shared running builds with exec on ctx. Successful
// builds stay attachable for keep after they finish. Without options builds
// are not observed.
func NewShared(ctx context.Context, exec Executor, keep time.Duration, opts ...Option) *Shared {
	s := &Shared{exec: exec, ctx: ctx, keep: keep, builds: make(map[string]*build), owned: make(map[string]int)}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Build returns the log of the build of req.Image, starting it if needed.
// ctx is the client's: the client follows the build until it ends. The log
// begins with the "waiting" event.
func (s *Shared) Build(ctx context.Context, req binderbuild.BuildRequest) (*events.Log, error) {
	log, _, err := s.Join(ctx, req)
	return log, err
}

// Join is Build that also reports whether the request joined a build
// already running, or one that succeeded less than keep ago, instead of
// starting one.
func (s *Shared) Join(ctx context.Context, req binderbuild.BuildRequest) (log *events.Log, joined bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, joined := s.builds[req.Image]
	if joined && b.dropped {
		joined = false // its last event says it was cancelled
	}
	if !joined {
		if s.ownerLimit > 0 && req.Owner != "" && s.owned[req.Owner] >= s.ownerLimit {
			return nil, false, ownerLimited(s.ownerLimit)
		}
		b = s.start(req)
	}
	b.followers++
	context.AfterFunc(ctx, func() { s.leave(b) })
	return b.log, joined, nil
}

// start starts the build of req; s.mu is held.
func (s *Shared) start(req binderbuild.BuildRequest) *build {
	ctx, cancel := context.WithCancel(s.ctx)
	b := &build{log: events.NewLog(0), cancel: cancel, owner: req.Owner}
	b.log.Append(events.Waiting)
	s.builds[req.Image] = b
	s.owned[req.Owner]++
	tr := newTracker(req, s.metrics, s.emitter, s.log, time.Now)
	tr.onQueue = func(queued bool) { s.queued(b, queued) }
	s.wg.Add(1)
	go s.run(ctx, req, b, tr)
	return b
}

// leave counts a client gone.
func (s *Shared) leave(b *build) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.followers--
	s.dropUnfollowed(b)
}

// queued records whether the build waits in the executor's queue.
func (s *Shared) queued(b *build, queued bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.queued = queued
	s.dropUnfollowed(b)
}

// dropUnfollowed cancels a queued build that no client follows any more:
// it never starts. A build that has started runs on. s.mu is held.
func (s *Shared) dropUnfollowed(b *build) {
	if b.followers == 0 && b.queued && !b.dropped {
		b.dropped = true
		b.cancel()
	}
}

// run runs one build. Its end is counted before the log finishes, so that
// a client seeing the last event also sees the build counted.
func (s *Shared) run(ctx context.Context, req binderbuild.BuildRequest, b *build, tr *tracker) {
	defer s.wg.Done()
	defer b.cancel()
	stop, followed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(followed)
		tr.follow(b.log, stop)
	}()
	err := s.exec.Run(withTracker(ctx, tr), req, b.log)
	close(stop)
	<-followed
	switch {
	case s.ctx.Err() != nil && errors.Is(err, s.ctx.Err()):
		tr.abandon(err)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		err = events.Fail(events.CauseCancelled, "Build cancelled: every client waiting for it left before it started.\n")
		tr.end(err)
	default:
		tr.end(err)
	}
	kept := err == nil && s.keep > 0
	s.mu.Lock()
	s.owned[b.owner]--
	if s.owned[b.owner] == 0 {
		delete(s.owned, b.owner)
	}
	if !kept {
		s.forgetLocked(req.Image, b)
	}
	s.mu.Unlock()
	// Forgotten before the last event: a client that saw the failure and
	// asks again starts a new build instead of joining the old one.
	b.log.Finish(err)
	if kept {
		time.AfterFunc(s.keep, func() { s.forget(req.Image, b) })
	}
}

func (s *Shared) forget(image string, b *build) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(image, b)
}

// forgetLocked drops b unless another build of image replaced it; s.mu is
// held.
func (s *Shared) forgetLocked(image string, b *build) {
	if s.builds[image] == b {
		delete(s.builds, image)
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
