package pushlist

import (
	"sync"
	"testing"
)

// Values of concurrent pushers come out whole, each pusher's in its order,
// and a warm list allocates nothing.
func TestPushTake(t *testing.T) {
	var l List[[2]int]
	const pushers, each = 8, 5000
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for i := range each {
				l.Push([2]int{p, i})
			}
		})
	}
	next := make([]int, pushers)
	var got [][2]int
	check := func() {
		for _, v := range got {
			if v[1] != next[v[0]] {
				t.Fatalf("pusher %d: value %d after %d", v[0], v[1], next[v[0]]-1)
			}
			next[v[0]]++
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		got = l.Take(got[:0])
		check()
	}
	got = l.Take(got[:0])
	check()
	for p, n := range next {
		if n != each {
			t.Errorf("pusher %d: %d values taken, want %d", p, n, each)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { l.Push([2]int{}); got = l.Take(got[:0]) }); allocs != 0 {
		t.Errorf("push and take allocate %v times, want 0", allocs)
	}
}
