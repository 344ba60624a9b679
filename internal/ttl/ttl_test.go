package ttl

import (
	"testing"
	"time"
)

// clock is a fake clock that tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }

func TestExpiry(t *testing.T) {
	clk := newClock()
	c := New[string, int](10, clk.now)
	c.Add("minute", 1, time.Minute)
	c.Add("forever", 2, 0)
	clk.add(time.Minute - time.Nanosecond)
	if v, ok := c.Get("minute"); !ok || v != 1 {
		t.Errorf("Get(minute) just before its TTL = %d, %v; want 1, true", v, ok)
	}
	clk.add(time.Nanosecond)
	if v, ok := c.Peek("minute"); ok {
		t.Errorf("Peek(minute) at its TTL = %d, true; want none", v)
	}
	if c.Len() != 1 {
		t.Errorf("Len after meeting the expired entry = %d, want 1: it is dropped", c.Len())
	}
	clk.add(1000 * time.Hour)
	if v, ok := c.Get("forever"); !ok || v != 2 {
		t.Errorf("Get(forever) = %d, %v; want 2, true: a TTL of 0 never expires", v, ok)
	}
}

func TestLeastRecentlyUsedGoes(t *testing.T) {
	c := New[string, int](2, newClock().now)
	c.Add("a", 1, time.Hour)
	c.Add("b", 2, time.Hour)
	c.Get("a") // b is now the least recently used
	c.Peek("b")
	c.Add("c", 3, time.Hour)
	if _, ok := c.Get("b"); ok {
		t.Error("b is still cached: the least recently used entry must go (Peek does not count as use)")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s was evicted, want b evicted", k)
		}
	}
}

func TestRemoveAndPurge(t *testing.T) {
	c := New[string, int](0, nil) // at least one entry, on the real clock
	c.Add("a", 1, time.Hour)
	c.Remove("a")
	if _, ok := c.Get("a"); ok {
		t.Error("Get after Remove found the entry")
	}
	c.Add("b", 2, time.Hour)
	c.Purge()
	if c.Len() != 0 {
		t.Errorf("Len after Purge = %d, want 0", c.Len())
	}
}

func TestDropExpired(t *testing.T) {
	clk := newClock()
	c := New[string, int](10, clk.now)
	c.Add("short", 1, time.Second)
	c.Add("long", 2, time.Hour)
	c.Add("forever", 3, 0)
	clk.add(time.Minute)
	c.DropExpired()
	if c.Len() != 2 {
		t.Errorf("Len after DropExpired = %d, want 2 (long, forever)", c.Len())
	}
}
