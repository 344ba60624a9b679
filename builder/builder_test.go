package builder

import (
	"context"
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
	req := binderbuild.BuildRequest{Name: "build-a"}
	first, _ := s.Build(callerCtx, req)
	cancel() // the first caller leaving must not cancel the build
	second, _ := s.Build(t.Context(), req)
	if first != second {
		t.Fatal("second request got a different log")
	}
	other, _ := s.Build(t.Context(), binderbuild.BuildRequest{Name: "build-b"})
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
	req := binderbuild.BuildRequest{Name: "build-a"}
	log, _ := s.Build(t.Context(), req)
	waitDone(t, log)
	s.Wait()
	again, _ := s.Build(t.Context(), req)
	waitDone(t, again)
	if again == log || runs.Load() != 2 {
		t.Errorf("failed build reused (runs %d), want a new build", runs.Load())
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
