// Package wait holds the context-aware pause and the retry schedule that
// the registry check, gc and the event sink share.
package wait

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends, then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
