package wait

import (
	"context"
	"fmt"
	"time"
)

// Retry is a retry schedule: up to Attempts tries, pausing Delay after the
// first failed one and twice as long after each next, up to MaxDelay.
type Retry struct {
	// Attempts is the most tries; below 1, one.
	Attempts int
	// Delay is the first pause; MaxDelay caps the pauses (0: no cap).
	Delay, MaxDelay time.Duration
	// Retryable tells whether a failed try may succeed later; nil: any
	// error may.
	Retryable func(error) bool
	// OnRetry, when set, hears of each failed try that is retried, before
	// the pause (for logs and metrics).
	OnRetry func(attempt int, err error)
}

// Do calls try until it succeeds, fails with an error Retryable refuses,
// Attempts tries have failed, or ctx ends. It returns the number of tries
// and the last try's error; when ctx has ended, the error is ctx's cause
// with the last try's error ("context canceled (last error: …)"), and
// both match errors.Is.
func (r Retry) Do(ctx context.Context, try func() error) (attempts int, err error) {
	for attempt := 1; ; attempt++ {
		if err = try(); err == nil {
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, ended(ctx, err)
		}
		if attempt >= r.Attempts || (r.Retryable != nil && !r.Retryable(err)) {
			return attempt, err
		}
		if r.OnRetry != nil {
			r.OnRetry(attempt, err)
		}
		if Sleep(ctx, r.pause(attempt)) != nil {
			return attempt, ended(ctx, err)
		}
	}
}

// pause is the pause after failed try attempt: Delay doubled attempt-1
// times, at most MaxDelay.
func (r Retry) pause(attempt int) time.Duration {
	p := r.Delay
	for range attempt - 1 {
		p *= 2
		if r.MaxDelay > 0 && p >= r.MaxDelay {
			return r.MaxDelay
		}
	}
	return p
}

func ended(ctx context.Context, last error) error {
	return fmt.Errorf("%w (last error: %w)", context.Cause(ctx), last)
}
