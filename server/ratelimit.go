package server

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/binderbuild/binderbuild/internal/ttl"
)

// Rate limiter defaults, as upstream's RateLimiter.
const (
	rateLimitCleanInterval = 10 * time.Minute
	// rateLimitMaxKeys bounds the limiter's memory (about 150 bytes per
	// key): when full, the least recently used window goes (its client
	// merely starts a new one).
	rateLimitMaxKeys = 100_000
)

// rateLimiter counts requests per key in fixed windows, as upstream's
// binderhub/ratelimit.py: a key's first request opens a window of period
// with limit requests; each request takes one, the count may go negative,
// and a request after the window's reset opens a new one. It is safe for
// concurrent use.
type rateLimiter struct {
	limit  int
	period time.Duration
	now    func() time.Time

	mu sync.Mutex // guards the windows' counts and lastClean
	// windows holds each key's open window until its reset.
	windows   *ttl.Cache[string, *rateWindow]
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
	return newRateLimiterKeys(limit, period, now, rateLimitMaxKeys)
}

// newRateLimiterKeys is newRateLimiter holding at most maxKeys keys.
func newRateLimiterKeys(limit int, period time.Duration, now func() time.Time, maxKeys int) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{limit: limit, period: period, now: now,
		windows: ttl.New[string, *rateWindow](maxKeys, now), lastClean: now()}
}

// increment counts one request of key. It returns a rate-limit error (429)
// when the window's requests are used up.
func (l *rateLimiter) increment(key string) (rateLimit, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.lastClean) >= rateLimitCleanInterval {
		l.windows.DropExpired()
		l.lastClean = now
	}
	w, ok := l.windows.Get(key) // a window past its reset is gone
	if !ok {
		w = &rateWindow{remaining: l.limit, reset: now.Add(l.period)}
		l.windows.Add(key, w, l.period)
	}
	w.remaining--
	rl := rateLimit{Limit: l.limit, Remaining: w.remaining, Reset: w.reset}
	if w.remaining < 0 {
		return rl, userError(http.StatusTooManyRequests,
			fmt.Sprintf("Rate limit exceeded. Try again in %d seconds.", int(l.period.Seconds())))
	}
	return rl, nil
}

// size returns the number of keys held.
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.windows.Len()
}

// setHeaders adds upstream's X-RateLimit-* headers.
func (rl rateLimit) setHeaders(h http.Header) {
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.Reset.Unix(), 10))
	h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Limit))
}
