//go:build linux

package testcluster

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Shared is one cluster for the tests of a package, started by the first
// test that asks for it: the package's other tests (and `go test -run` of
// them) start no control plane. The zero value is ready; TestMain calls Stop
// after m.Run.
type Shared struct {
	// Setup runs once after the start, e.g. to add the nodes every test
	// needs; nil: none.
	Setup func(ctx context.Context, c *Cluster) error

	once sync.Once
	c    *Cluster
	err  error
}

// Get returns the package's cluster, starting it on first use (at most 3
// minutes). It fails the test (never skips) when the cluster cannot start.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.c, s.err = Start(ctx, Options{})
		if s.err == nil && s.Setup != nil {
			s.err = s.Setup(ctx, s.c)
		}
	})
	if s.err != nil {
		t.Fatalf("test cluster: %v", s.err)
	}
	return s.c
}

// Stop stops the cluster if one was started.
func (s *Shared) Stop() error {
	if s.c == nil {
		return nil
	}
	return s.c.Stop()
}
