// Package batchwriter groups small writes, such as log lines, into few
// large ones: each Write copies its bytes into a buffer that a goroutine
// writes out as soon as it can, so that under load many lines cost one
// system call, and when idle a line is written at once.
package batchwriter

import (
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/binderbuild/binderbuild/internal/pushlist"
)

// Writer is an io.Writer that batches writes to w. Writes keep their order
// and are never split. A Writer holding max bytes not yet taken makes
// further writes wait, so a stuck w slows its writers down rather than
// losing lines or growing without bound.
//
// Writes do not take a lock: each pushes its bytes on a list with one
// atomic swap, which the goroutine takes whole. Under load, requests that
// all log would otherwise queue on one mutex, and a queue on a mutex is
// what makes the slowest requests slow.
type Writer struct {
	w   io.Writer
	max int64

	lines  pushlist.List[*[]byte] // copies of the Writes not yet taken
	held   atomic.Int64           // bytes in lines
	active atomic.Int64           // Writes under way: Close waits for them
	closed atomic.Bool
	failed atomic.Bool // err is set
	// wake holds a token when there may be lines to write or the writer
	// closed: a Write never waits to hand one over.
	wake chan struct{}

	mu      sync.Mutex // for the slow paths: waiting for room, errors
	room    sync.Cond  // lines were taken or written, or the writer closed
	waiting atomic.Int64
	writing bool      // a batch is being written
	err     error     // the first error of w, returned by later writes
	batch   []byte    // the bytes of one write, reused
	taken   []*[]byte // the lines of one write, reused
	done    chan struct{}
}

// buffers holds the copies of written lines for reuse.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooled is the largest line buffer kept for reuse: a rare long line
// does not stay in memory.
const maxPooled = 4 << 10

// New returns a Writer to w holding at most max bytes (0: 1 MiB). Close
// writes what is left and stops its goroutine.
func New(w io.Writer, max int) *Writer {
	if max <= 0 {
		max = 1 << 20
	}
	b := &Writer{w: w, max: int64(max), wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.room.L = &b.mu
	go b.run()
	return b
}

// Write queues p. It returns an error only once w has failed or the
// Writer is closed.
func (b *Writer) Write(p []byte) (int, error) {
	b.active.Add(1)
	defer b.active.Add(-1)
	if held := b.held.Load(); held > 0 && held+int64(len(p)) > b.max || b.closed.Load() || b.failed.Load() {
		if err := b.waitForRoom(len(p)); err != nil {
			return 0, err
		}
	}
	buf := buffers.Get().(*[]byte)
	*buf = append((*buf)[:0], p...)
	b.held.Add(int64(len(p)))
	b.lines.Push(buf)
	b.signal()
	return len(p), nil
}

// waitForRoom waits until n more bytes fit, and says why they cannot be
// written when they never will.
func (b *Writer) waitForRoom(n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		switch held := b.held.Load(); {
		case b.closed.Load():
			return io.ErrClosedPipe
		case b.err != nil:
			return b.err
		case held == 0 || held+int64(n) <= b.max:
			return nil
		}
		b.wait()
	}
}

// signal hands the goroutine a token unless it holds one already.
func (b *Writer) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// wait waits for room to change; b.mu is held.
func (b *Writer) wait() {
	b.waiting.Add(1)
	b.room.Wait()
	b.waiting.Add(-1)
}

// changed wakes whoever waits for room. A waiter looks at held and waits
// under mu, and every batch takes mu after it changed held and calls
// changed again, so a waiter that missed one call is woken by the next.
func (b *Writer) changed() {
	if b.waiting.Load() > 0 {
		b.mu.Lock()
		b.room.Broadcast()
		b.mu.Unlock()
	}
}

func (b *Writer) run() {
	defer close(b.done)
	for range b.wake {
		for b.writeBatch() {
		}
		if b.closed.Load() {
			b.drain()
			return
		}
	}
}

// drain writes the lines of the Writes that began before Close, waking
// at each batch those that wait for room so that they see it closed.
func (b *Writer) drain() {
	for {
		idle := b.active.Load() == 0 // any later Write sees the Writer closed
		more := b.writeBatch()
		if idle && !more {
			return
		}
		if !more {
			runtime.Gosched()
		}
	}
}

// writeBatch writes every line pushed so far in one write, oldest first,
// and reports whether there was any.
func (b *Writer) writeBatch() bool {
	b.mu.Lock()
	b.writing = true
	b.mu.Unlock()
	b.taken = b.lines.Take(b.taken[:0])
	b.batch = b.batch[:0]
	for _, buf := range b.taken {
		b.batch = append(b.batch, *buf...)
		if cap(*buf) <= maxPooled {
			buffers.Put(buf)
		}
	}
	clear(b.taken)
	b.held.Add(-int64(len(b.batch)))
	b.changed() // room for waiting writers
	var err error
	if len(b.batch) > 0 {
		_, err = b.w.Write(b.batch)
	}
	if cap(b.batch) > int(b.max) {
		b.batch = nil
	}
	b.mu.Lock()
	b.writing = false
	if err != nil && b.err == nil {
		b.err = err
		b.failed.Store(true)
	}
	b.mu.Unlock()
	b.changed()
	return len(b.taken) > 0
}

// Flush waits until everything written before it has reached w.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for (b.held.Load() > 0 || b.writing) && b.err == nil {
		b.wait()
	}
	return b.err
}

// Close writes what is queued, stops the Writer and returns w's first
// error. It does not close w.
func (b *Writer) Close() error {
	b.closed.Store(true)
	b.changed()
	b.signal()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
