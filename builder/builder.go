// Package builder runs image builds: the Executor interface, the Shared
// decorator that gives every request for the same image one build, and the
// executors (Kubernetes build pods).
package builder

import (
	"context"
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

	mu     sync.Mutex
	builds map[string]*events.Log
	wg     sync.WaitGroup
}

// NewShared returns a Shared running builds with exec on ctx. Successful
// builds stay attachable for keep after they finish.
func NewShared(ctx context.Context, exec Executor, keep time.Duration) *Shared {
	return &Shared{exec: exec, ctx: ctx, keep: keep, builds: make(map[string]*events.Log)}
}

// Build returns the log of the build for req.Name, starting it if needed.
// The log begins with the "waiting" event.
func (s *Shared) Build(_ context.Context, req binderbuild.BuildRequest) (*events.Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if log, ok := s.builds[req.Name]; ok {
		return log, nil
	}
	log := events.NewLog(0)
	log.Append(events.Waiting)
	s.builds[req.Name] = log
	s.wg.Add(1)
	go s.run(req, log)
	return log, nil
}

func (s *Shared) run(req binderbuild.BuildRequest, log *events.Log) {
	defer s.wg.Done()
	err := s.exec.Run(s.ctx, req, log)
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
