package wait

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("Sleep = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep with an ended context = %v, want context.Canceled", err)
	}
}

// TestRetry: the tries, pauses and errors of a schedule, by outcome.
func TestRetry(t *testing.T) {
	boom, fatal := errors.New("boom"), errors.New("fatal")
	tests := []struct {
		name      string
		retry     Retry
		errs      []error // of the tries in turn; nil: success
		wantTries int
		wantErr   error
		wantRetry []int // attempts OnRetry heard of
	}{
		{"first try", Retry{Attempts: 3}, []error{nil}, 1, nil, nil},
		{"second try", Retry{Attempts: 3}, []error{boom, nil}, 2, nil, []int{1}},
		{"exhausted", Retry{Attempts: 3}, []error{boom, boom, boom}, 3, boom, []int{1, 2}},
		{"one attempt below 1", Retry{}, []error{boom}, 1, boom, nil},
		{"not retryable", Retry{Attempts: 3, Retryable: func(err error) bool { return err != fatal }}, []error{boom, fatal}, 2, fatal, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var heard []int
			tc.retry.Delay = time.Microsecond
			tc.retry.OnRetry = func(attempt int, _ error) { heard = append(heard, attempt) }
			tries := 0
			n, err := tc.retry.Do(t.Context(), func() error { tries++; return tc.errs[tries-1] })
			if n != tc.wantTries || tries != tc.wantTries || !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Errorf("Do = %d, %v after %d tries; want %d, %v", n, err, tries, tc.wantTries, tc.wantErr)
			}
			if len(heard) != len(tc.wantRetry) || (len(heard) > 0 && heard[len(heard)-1] != tc.wantRetry[len(tc.wantRetry)-1]) {
				t.Errorf("OnRetry heard %v, want %v", heard, tc.wantRetry)
			}
		})
	}
}

// TestRetryEndsWithContext: a context that ends during a pause ends the
// retries with its error and the last try's.
func TestRetryEndsWithContext(t *testing.T) {
	boom := errors.New("boom")
	ctx, cancel := context.WithCancel(t.Context())
	r := Retry{Attempts: 5, Delay: time.Hour, OnRetry: func(int, error) { cancel() }}
	n, err := r.Do(ctx, func() error { return boom })
	if n != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, boom) || err.Error() != "context canceled (last error: boom)" {
		t.Errorf("Do = %d, %v; want 1, context canceled (last error: boom)", n, err)
	}
}

// TestRetryEndsWithContextInATry: a try during which ctx ends is the last.
func TestRetryEndsWithContextInATry(t *testing.T) {
	boom := errors.New("boom")
	ctx, cancel := context.WithCancel(t.Context())
	n, err := Retry{Attempts: 5}.Do(ctx, func() error { cancel(); return boom })
	if n != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, boom) {
		t.Errorf("Do = %d, %v; want 1, context canceled (last error: boom)", n, err)
	}
}

// TestRetryPauses: pauses double from Delay up to MaxDelay.
func TestRetryPauses(t *testing.T) {
	r := Retry{Delay: time.Second, MaxDelay: 5 * time.Second}
	var got []time.Duration
	for attempt := 1; attempt <= 5; attempt++ {
		got = append(got, r.pause(attempt))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("pauses = %v, want %v", got, want)
	}
}
