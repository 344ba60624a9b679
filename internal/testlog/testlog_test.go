package testlog

import (
	"fmt"
	"sync"
	"testing"
)

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { fmt.Fprintf(&b, "%d", i%10) })
	}
	wg.Wait()
	if got := len(b.String()); got != 10 {
		t.Errorf("%d bytes after 10 writes of one byte, want 10", got)
	}
	if got := b.Tail(3); len(got) != len("…")+3 {
		t.Errorf("Tail(3) = %q, want … and 3 bytes", got)
	}
	if got := b.Tail(100); got != b.String() {
		t.Errorf("Tail(100) = %q, want all of %q", got, b.String())
	}
}
