// Package pushlist holds the list that many goroutines push onto without a
// lock and one consumer takes whole: writers on a hot path never queue on
// a mutex, and the consumer gets the values in the order they were pushed.
package pushlist

import (
	"sync"
	"sync/atomic"
)

// List is a lock-free multi-producer list taken whole by its consumer. Its
// zero value is an empty list, safe for concurrent use.
type List[T any] struct {
	newest atomic.Pointer[node[T]]
	nodes  sync.Pool
}

type node[T any] struct {
	next *node[T]
	v    T
}

// Push adds v with one atomic swap.
func (l *List[T]) Push(v T) {
	n, _ := l.nodes.Get().(*node[T])
	if n == nil {
		n = new(node[T])
	}
	n.v = v
	for {
		n.next = l.newest.Load()
		if l.newest.CompareAndSwap(n.next, n) {
			return
		}
	}
}

// Take removes every value pushed so far and appends them to dst, oldest
// first.
func (l *List[T]) Take(dst []T) []T {
	var oldest *node[T]
	for n := l.newest.Swap(nil); n != nil; {
		next := n.next
		n.next, oldest = oldest, n
		n = next
	}
	var zero T
	for n := oldest; n != nil; {
		next := n.next
		dst = append(dst, n.v)
		n.next, n.v = nil, zero
		l.nodes.Put(n)
		n = next
	}
	return dst
}
