package server

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Rate limiter defaults, as upstream's RateLimiter.
const (
	rateLimitCleanInterval = 10 * time.Minute
	// rateLimitMaxKeys bounds the limiter's memory (about 100 bytes per
	// key): when full, expired windows are dropped first, then a tenth of
	// the others.
	rateLimitMaxKeys = 100_000
)

// rateLimiter counts requests per key in fixed windows, as upstream's
// binderhub/ratelimit.py: a key's first request opens a window of period
// with limit requests; each request takes one, the count may go negative,
// and a request after the window's reset opens a new one. It is safe for
// concurrent use.
type rateLimiter struct {
	limit   int
	period  time.Duration
	now     func() time.Time
	maxKeys int

	mu        sync.Mutex
	windows   map[string]*rateWindow
	lastClean time.Time
}

type rateWindow struct {
	remaining int
	reset     time.Time
}

// rateLimit is a key's state after a request.
type rateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Time
}

// newRateLimiter returns a limiter of limit requests per period. now is the
// clock (nil: time.Now).
func newRateLimiter(limit int, period time.Duration, now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{limit: limit, period: period, now: now, maxKeys: rateLimitMaxKeys,
		windows: make(map[string]*rateWindow), lastClean: now()}
}

// increment counts one request of key. It returns a rate-limit error (429)
// when the window's requests are used up.
func (l *rateLimiter) increment(key string) (rateLimit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.lastClean) >= rateLimitCleanInterval {
		l.clean(now)
	}
	w, ok := l.windows[key]
	if !ok {
		if len(l.windows) >= l.maxKeys {
			l.clean(now)
			l.evict()
		}
		w = &rateWindow{remaining: l.limit, reset: now.Add(l.period)}
		l.windows[key] = w
	} else if !now.Before(w.reset) {
		w.remaining, w.reset = l.limit, now.Add(l.period)
	}
	w.remaining--
	rl := rateLimit{Limit: l.limit, Remaining: w.remaining, Reset: w.reset}
	if w.remaining < 0 {
		return rl, userError(http.StatusTooManyRequests,
			fmt.Sprintf("Rate limit exceeded. Try again in %d seconds.", int(l.period.Seconds())))
	}
	return rl, nil
}

// clean drops expired windows.
func (l *rateLimiter) clean(now time.Time) {
	for k, w := range l.windows {
		if !now.Before(w.reset) {
			delete(l.windows, k)
		}
	}
	l.lastClean = now
}

// evict makes room when every window is live: it drops a tenth of the
// windows, chosen by map order (random), so a flood of new keys costs one scan
// per tenth of the capacity. An evicted client merely starts a new window.
func (l *rateLimiter) evict() {
	target := l.maxKeys - l.maxKeys/10 - 1
	for k := range l.windows {
		if len(l.windows) <= target {
			return
		}
		delete(l.windows, k)
	}
}

// size returns the number of keys held.
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.windows)
}

// setHeaders adds upstream's X-RateLimit-* headers.
func (rl rateLimit) setHeaders(h http.Header) {
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.Reset.Unix(), 10))
	h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Limit))
}
