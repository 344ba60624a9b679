// Package batchwriter groups small writes, such as log lines, into few
// large ones: each Write copies its bytes into a buffer that a goroutine
// writes out as soon as it can, so that under load many lines cost one
// system call, and when idle a line is written at once.
package batchwriter

import (
	"io"
	"sync"
)

// Writer is an io.Writer that batches writes to w. Writes keep their order
// and are never split. A Writer holding max bytes not yet written makes
// further writes wait, so a stuck w slows its writers down rather than
// losing lines or growing without bound.
type Writer struct {
	w   io.Writer
	max int

	mu      sync.Mutex
	changed sync.Cond // pending grew, was taken, or the writer closed
	pending []byte
	spare   []byte // the buffer last written, reused for the next batch
	writing bool   // a batch is being written outside mu
	closed  bool
	err     error // the first error of w, returned by later writes
	done    chan struct{}
}

// New returns a Writer to w holding at most max bytes (0: 1 MiB). Close
// writes what is left and stops its goroutine.
func New(w io.Writer, max int) *Writer {
	if max <= 0 {
		max = 1 << 20
	}
	b := &Writer{w: w, max: max, done: make(chan struct{})}
	b.changed.L = &b.mu
	go b.run()
	return b
}

// Write queues p. It returns an error only once w has failed or the
// Writer is closed.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) > 0 && len(b.pending)+len(p) > b.max && !b.closed && b.err == nil {
		b.changed.Wait()
	}
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	if b.err != nil {
		return 0, b.err
	}
	b.pending = append(b.pending, p...)
	b.changed.Broadcast()
	return len(p), nil
}

func (b *Writer) run() {
	defer close(b.done)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for len(b.pending) == 0 && !b.closed {
			b.changed.Wait()
		}
		if len(b.pending) == 0 {
			return // closed and drained
		}
		batch := b.pending
		b.pending, b.spare = b.spare[:0], nil
		b.writing = true
		b.changed.Broadcast() // room for waiting writers
		b.mu.Unlock()
		_, err := b.w.Write(batch)
		b.mu.Lock()
		b.writing = false
		if err != nil && b.err == nil {
			b.err = err
		}
		if cap(batch) <= b.max {
			b.spare = batch
		}
		b.changed.Broadcast()
	}
}

// Flush waits until everything written before it has reached w.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for (len(b.pending) > 0 || b.writing) && b.err == nil {
		b.changed.Wait()
	}
	return b.err
}

// Close writes what is queued, stops the Writer and returns w's first
// error. It does not close w.
func (b *Writer) Close() error {
	b.mu.Lock()
	b.closed = true
	b.changed.Broadcast()
	b.mu.Unlock()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
