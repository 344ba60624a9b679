package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupCoalesces(t *testing.T) {
	var g Group[string, int]
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	fn := func(context.Context) (int, error) {
		if calls.Add(1) == 1 {
			close(started)
		}
		<-release
		return 42, nil
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if got, err := g.Do(t.Context(), "k", fn); got != 42 || err != nil {
				t.Errorf("Do = %d, %v; want 42, nil", got, err)
			}
		})
	}
	<-started
	// Let the other callers join before the call ends.
	for g.Waiters("k") < 10 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
}

func TestGroupCancelsWhenEveryCallerLeft(t *testing.T) {
	var g Group[string, int]
	callErr := make(chan error, 1)
	started := make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		callErr <- ctx.Err()
		return 0, ctx.Err()
	}
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	errs := make(chan error, 2)
	go func() { _, err := g.Do(ctx1, "k", fn); errs <- err }()
	<-started
	go func() { _, err := g.Do(ctx2, "k", fn); errs <- err }()
	for g.Waiters("k") < 2 {
		time.Sleep(time.Millisecond)
	}

	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: error = %v, want context.Canceled", err)
	}
	select {
	case err := <-callErr:
		t.Fatalf("call cancelled (%v) while a second caller still waits", err)
	default:
	}
	cancel2()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("second caller: error = %v, want context.Canceled", err)
	}
	if err := <-callErr; !errors.Is(err, context.Canceled) {
		t.Errorf("call context error = %v, want context.Canceled once nobody waits", err)
	}

	// A new caller starts a new call rather than joining the cancelled one.
	got, err := g.Do(t.Context(), "k", func(context.Context) (int, error) { return 7, nil })
	if got != 7 || err != nil {
		t.Errorf("Do after cancellation = %d, %v; want 7, nil", got, err)
	}
}

func TestGroupKeepsCallerValues(t *testing.T) {
	type keyType struct{}
	var g Group[string, string]
	ctx := context.WithValue(t.Context(), keyType{}, "request-id")
	got, _ := g.Do(ctx, "k", func(ctx context.Context) (string, error) {
		v, _ := ctx.Value(keyType{}).(string)
		return v, nil
	})
	if got != "request-id" {
		t.Errorf("value seen by the call = %q, want request-id", got)
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2, 0)
	r1, err1 := l.Acquire(t.Context())
	r2, err2 := l.Acquire(t.Context())
	if err1 != nil || err2 != nil {
		t.Fatalf("Acquire within the limit: %v, %v", err1, err2)
	}
	if _, err := l.Acquire(t.Context()); !errors.Is(err, ErrBusy) {
		t.Errorf("third Acquire error = %v, want ErrBusy", err)
	}
	r1()
	r3, err := l.Acquire(t.Context())
	if err != nil {
		t.Errorf("Acquire after a release: %v", err)
	}
	r2()
	r3()
}

func TestLimiterWaitsForASlot(t *testing.T) {
	l := NewLimiter(1, time.Hour)
	release, _ := l.Acquire(t.Context())
	got := make(chan error, 1)
	go func() {
		r, err := l.Acquire(t.Context())
		if err == nil {
			r()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Errorf("waiting Acquire error = %v, want nil once a slot is free", err)
	}

	release, _ = l.Acquire(t.Context())
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with an ended context: error = %v, want context.Canceled", err)
	}
}

func TestNilLimiterAllowsAll(t *testing.T) {
	l := NewLimiter(0, 0)
	for range 100 {
		if _, err := l.Acquire(t.Context()); err != nil {
			t.Fatalf("Acquire on an unlimited limiter: %v", err)
		}
	}
}
