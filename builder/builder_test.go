package builder

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

type funcExec func(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error

func (f funcExec) Run(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error {
	return f(ctx, req, log)
}

func TestSharedDedupesAndOutlivesCallers(t *testing.T) {
	var runs atomic.Int32
	release := make(chan struct{})
	exec := funcExec(func(ctx context.Context, _ binderbuild.BuildRequest, _ *events.Log) error {
		runs.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	s := NewShared(t.Context(), exec, time.Hour)
	callerCtx, cancel := context.WithCancel(t.Context())
	req := binderbuild.BuildRequest{Name: "build-a", Image: "r/a:1"}
	first, _ := s.Build(callerCtx, req)
	cancel() // the first caller leaving must not cancel the build
	second, _ := s.Build(t.Context(), req)
	if first != second {
		t.Fatal("second request got a different log")
	}
	other, _ := s.Build(t.Context(), binderbuild.BuildRequest{Name: "build-b", Image: "r/b:1"})
	if other == first {
		t.Fatal("a different build shared the log")
	}
	close(release)
	waitDone(t, first)
	if done, err := first.Result(); !done || err != nil {
		t.Errorf("Result() = %v, %v, want true, nil", done, err)
	}
	// A finished successful build is still handed out within keep.
	if again, _ := s.Build(t.Context(), req); again != first {
		t.Error("successful build was not kept")
	}
	s.Wait()
	if n := runs.Load(); n != 2 {
		t.Errorf("executor ran %d times, want 2", n)
	}
}

func TestSharedForgetsFailures(t *testing.T) {
	var runs atomic.Int32
	s := NewShared(t.Context(), funcExec(func(context.Context, binderbuild.BuildRequest, *events.Log) error {
		runs.Add(1)
		return events.Fail(events.CauseFailed, "no\n")
	}), time.Hour)
	req := binderbuild.BuildRequest{Name: "build-a", Image: "r/a:1"}
	log, _ := s.Build(t.Context(), req)
	waitDone(t, log)
	s.Wait()
	again, _ := s.Build(t.Context(), req)
	waitDone(t, again)
	if again == log || runs.Load() != 2 {
		t.Errorf("failed build reused (runs %d), want a new build", runs.Load())
	}
}

// A client that has seen a build fail and asks again starts a new build:
// the failure is forgotten before the client can see it, not after.
func TestSharedRetryAfterFailureStartsAgain(t *testing.T) {
	s := NewShared(t.Context(), funcExec(func(context.Context, binderbuild.BuildRequest, *events.Log) error {
		return events.Fail(events.CauseFailed, "no\n")
	}), time.Hour)
	req := binderbuild.BuildRequest{Name: "build-a", Image: "r/a:1"}
	for i := range 1000 {
		log, joined, _ := s.Join(t.Context(), req)
		if joined {
			t.Fatalf("attempt %d joined the failed build before it", i)
		}
		waitDone(t, log)
	}
	s.Wait()
}

// Build names hash 24 bits of the slug: two images with one build name are
// two builds, also after the first one succeeded.
func TestSharedKeysByImage(t *testing.T) {
	var images sync.Map
	s := NewShared(t.Context(), funcExec(func(_ context.Context, req binderbuild.BuildRequest, _ *events.Log) error {
		images.Store(req.Image, true)
		return nil
	}), time.Hour)
	first, _ := s.Build(t.Context(), binderbuild.BuildRequest{Name: "build-same", Image: "r/a:1"})
	waitDone(t, first)
	second, _ := s.Build(t.Context(), binderbuild.BuildRequest{Name: "build-same", Image: "r/b:1"})
	waitDone(t, second)
	if second == first {
		t.Fatal("a build of another image with the same build name got the first build's log")
	}
	s.Wait()
	for _, image := range []string{"r/a:1", "r/b:1"} {
		if _, ok := images.Load(image); !ok {
			t.Errorf("%s was not built", image)
		}
	}
}

func waitDone(t *testing.T, log *events.Log) {
	t.Helper()
	for {
		_, _, done, changed := log.Read(0)
		if done {
			return
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatal("build did not finish")
		}
	}
}

// A build still queued when its last client leaves is dropped: it never
// starts, and its log ends with the reason.
func TestSharedDropsUnfollowedQueuedBuild(t *testing.T) {
	began := make(chan string, 2)
	hold := make(chan struct{})
	q := newSlotQueue(1, 0, func() []slot { return nil })
	exec := funcExec(func(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error {
		if err := q.wait(ctx, req, log); err != nil {
			return err
		}
		defer q.done(req.Name)
		began <- req.Image
		select {
		case <-hold:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	s := NewShared(t.Context(), exec, 0)
	first, _ := s.Build(t.Context(), binderbuild.BuildRequest{Name: "build-a", Image: "r/a:1"})
	if img := <-began; img != "r/a:1" { // holds the only slot from now on
		t.Fatalf("%s began, want r/a:1", img)
	}
	client, leave := context.WithCancel(t.Context())
	second, _ := s.Build(client, binderbuild.BuildRequest{Name: "build-b", Image: "r/b:1"})
	for second.Len() < 2 { // waiting, then its place in the queue
		_, _, _, changed := second.Read(second.Len())
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatal("the second build was not queued")
		}
	}
	leave()
	waitDone(t, second)
	close(hold)
	waitDone(t, first)
	s.Wait()
	var f *events.Failure
	if _, err := second.Result(); !errors.As(err, &f) || f.Cause != events.CauseCancelled {
		t.Errorf("queued build without clients ended with %v, want cancelled", err)
	}
	select {
	case img := <-began:
		t.Errorf("%s began although its only client had left while it was queued", img)
	default:
	}
}
