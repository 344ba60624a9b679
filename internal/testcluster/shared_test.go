//go:build linux

package testcluster

import (
	"context"
	"testing"
)

// TestSharedStartsOnFirstGet: a Shared cluster that nobody asked for is
// never started, and one that was is started once, set up once and stopped.
func TestSharedStartsOnFirstGet(t *testing.T) {
	var idle Shared
	if err := idle.Stop(); err != nil {
		t.Errorf("Stop of a cluster never asked for = %v, want nil", err)
	}
	setups := 0
	s := Shared{Setup: func(ctx context.Context, c *Cluster) error {
		setups++
		return c.AddNode(ctx, "shared-node", nil, nil)
	}}
	first, second := s.Get(t), s.Get(t)
	if first != second || setups != 1 {
		t.Errorf("two Gets: same cluster %v, setups %d; want true, 1", first == second, setups)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
}
