package builder

import (
	"context"
	"time"
)

// CleanupAt runs one cleanup round of the local executor as if the time
// were now.
func (l *Local) CleanupAt(ctx context.Context, now time.Time) { l.cleanup(ctx, now) }
