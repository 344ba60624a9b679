package batchwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// gate is a writer whose writes wait until released, recording each call.
type gate struct {
	mu      sync.Mutex
	out     bytes.Buffer
	calls   int
	biggest int
	entered chan struct{}
	release chan struct{}
	err     error
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 1000), release: make(chan struct{}, 1000)}
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	g.biggest = max(g.biggest, len(p))
	if g.err != nil {
		return 0, g.err
	}
	return g.out.Write(p)
}

func TestLinesWrittenWhileBusyGoOutInOneWrite(t *testing.T) {
	g := newGate()
	w := New(g, 0)
	fmt.Fprintln(w, "first")
	<-g.entered // the first line is being written, slowly
	for i := range 100 {
		fmt.Fprintln(w, "line", i)
	}
	close(g.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if g.calls != 2 {
		t.Errorf("%d writes for 101 lines, want 2 (the first, then the rest at once)", g.calls)
	}
	want := "first\n"
	for i := range 100 {
		want += fmt.Sprintf("line %d\n", i)
	}
	if g.out.String() != want {
		t.Errorf("wrote %q, want %q", g.out.String(), want)
	}
}

func TestConcurrentWritesKeepEachLineWhole(t *testing.T) {
	var out safeBuffer
	w := New(&out, 64)
	var wg sync.WaitGroup
	for n := range 8 {
		wg.Go(func() {
			for i := range 200 {
				fmt.Fprintf(w, "writer %d line %d\n", n, i)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var n, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &n, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
		if key := fmt.Sprint(n); next[key] != i {
			t.Fatalf("writer %d: line %d after %d", n, i, next[key]-1)
		}
		next[fmt.Sprint(n)]++
	}
	if len(next) != 8 {
		t.Fatalf("lines of %d writers, want 8", len(next))
	}
}

func TestWritersWaitWhenMaxIsHeld(t *testing.T) {
	g := newGate()
	w := New(g, 10)
	w.Write([]byte("0123456789")) // taken by the goroutine, stuck in g
	<-g.entered
	w.Write([]byte("abcdefghij")) // held: 10 bytes
	var released atomic.Bool
	wrote := make(chan bool)
	go func() {
		w.Write([]byte("x")) // 11 bytes held: must wait for the first batch
		wrote <- released.Load()
	}()
	released.Store(true)
	g.release <- struct{}{}
	if !<-wrote {
		t.Fatal("a write went through while max bytes were held")
	}
	close(g.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if g.out.String() != "0123456789abcdefghijx" {
		t.Errorf("wrote %q", g.out.String())
	}
}

func TestErrorsReachLaterWrites(t *testing.T) {
	g := newGate()
	g.err = errors.New("broken pipe")
	close(g.release)
	w := New(g, 0)
	w.Write([]byte("lost\n"))
	if err := w.Flush(); err == nil || err.Error() != "broken pipe" {
		t.Fatalf("Flush = %v, want broken pipe", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("a write after the error succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close returned no error")
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) && err == nil {
		t.Error("a write after Close succeeded")
	}
}

func TestFlushWaitsForTheWrite(t *testing.T) {
	var out safeBuffer
	w := New(&out, 0)
	defer w.Close()
	w.Write([]byte("a line\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a line\n" {
		t.Errorf("after Flush: %q", out.String())
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A write that waits for room when the Writer closes is refused, not left
// waiting; the lines taken before are written.
func TestCloseReleasesWaitingWriters(t *testing.T) {
	g := newGate()
	w := New(g, 10)
	w.Write([]byte("0123456789"))
	<-g.entered
	w.Write([]byte("abcdefghij"))
	refused := make(chan error)
	go func() {
		_, err := w.Write([]byte("x"))
		refused <- err
	}()
	closed := make(chan error)
	go func() { closed <- w.Close() }()
	close(g.release)
	if err := <-refused; err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("waiting write = %v, want nil or %v", err, io.ErrClosedPipe)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := g.out.String(); !strings.HasPrefix(got, "0123456789abcdefghij") {
		t.Errorf("wrote %q, want the first 20 bytes", got)
	}
}

// Every write that Close races with is either written or refused: none
// is lost.
func TestWritesRacingCloseAreNotLost(t *testing.T) {
	for range 50 {
		var out safeBuffer
		w := New(&out, 0)
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					if _, err := w.Write([]byte("l\n")); err != nil {
						return
					}
					accepted.Add(1)
				}
			})
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if got := int64(strings.Count(out.String(), "l\n")); got != accepted.Load() {
			t.Fatalf("%d lines written, %d accepted", got, accepted.Load())
		}
	}
}
