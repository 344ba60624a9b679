package builder

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// EventEmitter receives build lifecycle events; *events.Emitter is one. Emit
// must not block.
type EventEmitter interface {
	Emit(events.Record)
}

// tracker follows one build from the request that started it to its end,
// for metrics, lifecycle events and logs. Shared creates one per build and
// hands it to the executor in the context: the admission queue calls
// enqueued and dequeued, executors call start when they attach to a build
// already running (all are nil-safe).
type tracker struct {
	req    binderbuild.BuildRequest
	m      *Metrics
	em     EventEmitter
	log    *slog.Logger
	now    func() time.Time
	queued time.Time
	// onQueue, when set, is told when the build enters and leaves the
	// executor's queue.
	onQueue func(queued bool)

	mu         sync.Mutex
	started    bool
	enqueuedAt time.Time
	phase      string    // current phase, one of events.Phases
	since      time.Time // when phase began
	phases     map[string]time.Duration
}

func newTracker(req binderbuild.BuildRequest, m *Metrics, em EventEmitter, log *slog.Logger, now func() time.Time) *tracker {
	t := &tracker{req: req, m: m, em: em, log: log.With("build", req.Name), now: now, queued: now(),
		phase: events.Phases[0], phases: make(map[string]time.Duration)}
	t.since = t.queued
	m.buildStarted()
	t.emit(events.Build{Step: events.BuildQueued})
	t.log.Info("build queued", "provider", req.ProviderName, "repo", events.Redact(req.RepoURL), "ref", req.Ref, "image", req.Image)
	return t
}

type trackerKey struct{}

// withTracker passes t to the executor through ctx.
func withTracker(ctx context.Context, t *tracker) context.Context {
	return context.WithValue(ctx, trackerKey{}, t)
}

// trackerFrom returns the build's tracker, nil when the executor runs
// outside Shared.
func trackerFrom(ctx context.Context) *tracker {
	t, _ := ctx.Value(trackerKey{}).(*tracker)
	return t
}

func (t *tracker) emit(b events.Build) {
	if t.em == nil {
		return
	}
	b.Name, b.Provider, b.Spec, b.Ref, b.Image = t.req.Name, t.req.ProviderName, t.req.Spec, t.req.Ref, t.req.Image
	if b.Provider == "" {
		b.Provider = t.req.Provider
	}
	t.em.Emit(b)
}

// enqueued records that the build waits for a build slot.
func (t *tracker) enqueued() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.enqueuedAt = t.now()
	t.mu.Unlock()
	t.m.queued()
	if t.onQueue != nil {
		t.onQueue(true)
	}
}

// dequeued records that the build left the queue; an admitted build has
// started.
func (t *tracker) dequeued(admitted bool) {
	if t == nil {
		return
	}
	t.mu.Lock()
	waited := t.now().Sub(t.enqueuedAt)
	t.mu.Unlock()
	if t.onQueue != nil {
		t.onQueue(false)
	}
	t.m.dequeued(admitted, waited.Seconds())
	if admitted {
		t.start()
	}
}

// start records that the executor admitted the build (created or attached
// to its pod). Only the first call counts.
func (t *tracker) start() {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.started {
		t.mu.Unlock()
		return
	}
	t.started = true
	queue := t.now().Sub(t.queued)
	t.mu.Unlock()
	t.emit(events.Build{Step: events.BuildStarted, Queue: queue})
	t.log.Info("build started", "queued_seconds", queue.Seconds())
}

// saw takes one event of the build's log: a known phase different from the
// current one closes the current phase.
func (t *tracker) saw(e events.Event) {
	if e.Phase == "" || !slices.Contains(events.Phases[:], e.Phase) {
		return
	}
	t.mu.Lock()
	if e.Phase == t.phase {
		t.mu.Unlock()
		return
	}
	now := t.now()
	prev, took := t.phase, now.Sub(t.since)
	t.phases[prev] += took
	t.phase, t.since = e.Phase, now
	t.mu.Unlock()
	t.log.Info("build phase", "phase", e.Phase, "previous", prev, "previous_seconds", took.Seconds())
}

// follow feeds the log's events to saw until stop is closed, then reads
// what is left and returns.
func (t *tracker) follow(log *events.Log, stop <-chan struct{}) {
	for cursor := 0; ; {
		evs, next, _, changed := log.Read(cursor)
		for _, e := range evs {
			t.saw(e)
		}
		cursor = next
		select {
		case <-changed:
		case <-stop:
			evs, _, _, _ := log.Read(cursor)
			for _, e := range evs {
				t.saw(e)
			}
			return
		}
	}
}

// end counts the build, which ended with err (see Executor), and emits its
// last event.
func (t *tracker) end(err error) {
	cause := events.CauseSuccess
	var f *events.Failure
	switch {
	case err == nil:
	case errors.As(err, &f):
		cause = f.Cause
	default:
		cause = events.CauseFailed
	}
	t.mu.Lock()
	now := t.now()
	t.phases[t.phase] += now.Sub(t.since)
	took := now.Sub(t.queued)
	phases := make(map[string]float64, len(t.phases))
	for p, d := range t.phases {
		phases[p] = d.Seconds()
	}
	phaseTimes := maps.Clone(t.phases)
	t.mu.Unlock()

	t.m.buildEnded(cause, t.providerName(), t.req.RepoURL, took.Seconds(), phases)
	step := events.BuildSucceeded
	if cause != events.CauseSuccess {
		step = events.BuildFailed
	}
	t.emit(events.Build{Step: step, Cause: cause, Duration: took, PhaseTimes: phaseTimes})
	attrs := []any{"cause", string(cause), "seconds", took.Seconds()}
	if err != nil && f == nil {
		attrs = append(attrs, "error", err)
	}
	t.log.Info("build ended", attrs...)
}

// abandon forgets a build this process stops following because it shuts
// down: the build goes on and is counted by whoever follows it next.
func (t *tracker) abandon(err error) {
	t.m.buildAbandoned()
	t.log.Info("build no longer followed: the service is stopping", "error", err)
}

func (t *tracker) providerName() string {
	if t.req.ProviderName != "" {
		return t.req.ProviderName
	}
	return t.req.Provider
}
