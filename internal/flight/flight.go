// Package flight coalesces identical concurrent calls to an upstream service
// and bounds how many such calls run at once. Unlike
// golang.org/x/sync/singleflight, a shared call is cancelled as soon as no
// caller waits for it any more, so clients that leave cannot pile up work
// nobody will read.
package flight

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Group coalesces concurrent calls with the same key. The zero value is
// ready to use; a Group must not be copied after first use.
type Group[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done    chan struct{} // closed once val and err are set
	val     V
	err     error
	waiters int // callers still waiting, guarded by Group.mu
	cancel  context.CancelFunc
}

// Do runs fn once for all concurrent calls with the same key and returns its
// result to each caller. fn runs in its own goroutine on a context that
// carries the first caller's values but not its cancellation or deadline;
// that context is cancelled when every caller waiting for the call has left
// (its ctx ended), and a later caller then starts a new call. A caller whose
// ctx ends first gets ctx.Err().
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(context.Context) (V, error)) (V, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[K]*call[V])
	}
	c, ok := g.calls[key]
	if !ok {
		callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call[V]{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go g.run(callCtx, key, c, fn)
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.leave(key, c)
		var zero V
		return zero, ctx.Err()
	}
}

// Waiters returns the number of callers waiting for the call of key, 0 when
// there is none.
func (g *Group[K, V]) Waiters(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.waiters
	}
	return 0
}

func (g *Group[K, V]) run(ctx context.Context, key K, c *call[V], fn func(context.Context) (V, error)) {
	defer c.cancel()
	c.val, c.err = fn(ctx)
	g.forget(key, c)
	close(c.done)
}

// leave drops one waiter; the last one cancels the call and removes it, in
// one step, so that no new caller joins a cancelled call.
func (g *Group[K, V]) leave(key K, c *call[V]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c.waiters--
	if c.waiters == 0 {
		c.cancel()
		g.forgetLocked(key, c)
	}
}

// forget removes c from the group unless a newer call took its key.
func (g *Group[K, V]) forget(key K, c *call[V]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forgetLocked(key, c)
}

func (g *Group[K, V]) forgetLocked(key K, c *call[V]) {
	if g.calls[key] == c {
		delete(g.calls, key)
	}
}

// ErrBusy is returned by Limiter.Acquire when no slot became free in time.
var ErrBusy = errors.New("too many concurrent calls")

// Limiter bounds the number of concurrent calls. A nil *Limiter allows any
// number.
type Limiter struct {
	slots chan struct{}
	wait  time.Duration
}

// NewLimiter allows n concurrent calls (n ≤ 0: no limit, a nil Limiter); a
// call waits at most wait for a free slot (0: it does not wait).
func NewLimiter(n int, wait time.Duration) *Limiter {
	if n <= 0 {
		return nil
	}
	return &Limiter{slots: make(chan struct{}, n), wait: wait}
}

// Acquire takes a slot and returns the function that gives it back. It
// returns ErrBusy when no slot frees up within the limiter's wait, and
// ctx.Err() when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	if l.wait <= 0 {
		return nil, ErrBusy
	}
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-timer.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *Limiter) release() { <-l.slots }
