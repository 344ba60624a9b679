// Package ttl holds the size-bounded cache whose entries expire that the
// registry check and the repository providers share, on an injected clock.
package ttl

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache maps keys to values for a time each: an entry older than its TTL is
// never returned (and is dropped when met), and past size entries the
// least recently used goes. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	entries *lru.Cache[K, entry[V]]
	now     func() time.Time
}

type entry[V any] struct {
	value   V
	expires time.Time // zero: never
}

// New returns a cache of at most size entries (at least 1) on the clock
// now (nil: time.Now).
func New[K comparable, V any](size int, now func() time.Time) *Cache[K, V] {
	if now == nil {
		now = time.Now
	}
	entries, _ := lru.New[K, entry[V]](max(size, 1)) // fails only for sizes below 1
	return &Cache[K, V]{entries: entries, now: now}
}

// Add stores value under key for ttl; a ttl of 0 or less never expires.
func (c *Cache[K, V]) Add(key K, value V, ttl time.Duration) {
	e := entry[V]{value: value}
	if ttl > 0 {
		e.expires = c.now().Add(ttl)
	}
	c.entries.Add(key, e)
}

// Get returns the live value of key and marks it recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	e, ok := c.entries.Get(key)
	return c.live(key, e, ok)
}

// Peek returns the live value of key without marking it used.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	e, ok := c.entries.Peek(key)
	return c.live(key, e, ok)
}

func (c *Cache[K, V]) live(key K, e entry[V], ok bool) (V, bool) {
	if ok && !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.entries.Remove(key)
		ok = false
	}
	if !ok {
		var zero V
		return zero, false
	}
	return e.value, true
}

// DropExpired drops every expired entry now (Get and Peek drop only those
// they meet); it costs a scan of the cache.
func (c *Cache[K, V]) DropExpired() {
	now := c.now()
	for _, k := range c.entries.Keys() {
		if e, ok := c.entries.Peek(k); ok && !e.expires.IsZero() && !now.Before(e.expires) {
			c.entries.Remove(k)
		}
	}
}

// Remove drops key.
func (c *Cache[K, V]) Remove(key K) { c.entries.Remove(key) }

// Purge drops every entry.
func (c *Cache[K, V]) Purge() { c.entries.Purge() }

// Len is the number of entries, expired ones not yet dropped included.
func (c *Cache[K, V]) Len() int { return c.entries.Len() }
