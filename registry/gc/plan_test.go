package gc

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/units"
)

// synth returns an image of blobs (digest → size) created at created.
func synth(repo, digest string, created time.Time, blobs map[string]int64, tags ...string) Image {
	img := Image{Repository: "reg.example/" + repo, Digest: digest, Tags: tags, Created: created, Blobs: blobs}
	for _, s := range blobs {
		img.Size += s
	}
	return img
}

func refs(cs []Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, shortRepo(c.Repository)+"@"+c.Digest)
	}
	return out
}

func TestNewPlan(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	var unknown time.Time
	inv := Inventory{Registry: "reg.example", Prefix: "reg.example/b/", Images: []Image{
		synth("b/x", "d1", ago(40*day), map[string]int64{"base": 100, "x1": 10}, "1"),
		synth("b/x", "d2", ago(20*day), map[string]int64{"base": 100, "x2": 300}, "2"),
		synth("b/x", "d3", unknown, map[string]int64{"u": 5}, "3"),
		synth("b/y", "d4", ago(50*day), map[string]int64{"y": 300}, "4"),
		synth("b/y", "d5", ago(10*day), map[string]int64{"y5": 50}, "5"),
	}}
	idx := synth("b/z", "i1", ago(60*day), map[string]int64{"z1": 20, "z2": 20}, "multi")
	idx.Children = []string{"c1", "c2"}
	inv.Images = append(inv.Images, idx, synth("b/z", "c2", ago(55*day), map[string]int64{"z2": 20}, "arm-only"))

	tests := []struct {
		name          string
		s             Settings
		wantDelete    []string
		wantProtected []string
		wantFreed     int64
		wantOverCap   bool
	}{
		{
			name:       "unknown creation time is never too old",
			s:          Settings{MaxAge: 30 * day},
			wantDelete: []string{"b/x@d1", "b/y@d4", "b/z@i1", "b/z@c2"},
			wantFreed:  10 + 300 + 40,
		},
		{
			name:       "unknown creation time counts as newest for keep",
			s:          Settings{Keep: 1},
			wantDelete: []string{"b/x@d1", "b/x@d2", "b/y@d4", "b/z@i1"},
		},
		{
			name:          "unknown creation time is protected by min age",
			s:             Settings{Purge: true, MinAge: time.Hour},
			wantDelete:    []string{"b/x@d1", "b/x@d2", "b/y@d4", "b/y@d5", "b/z@i1", "b/z@c2"},
			wantProtected: []string{"b/x@d3"},
		},
		{
			// 805 in all; after the pattern's 50, the largest image
			// (d2: 400, freeing 300 as the base stays with d1) goes.
			name:       "size cap largest, in cap order after the other policies",
			s:          Settings{Patterns: []string{"y:5$"}, MaxTotalSize: 805 - 50 - 1, Aggressive: Largest},
			wantDelete: []string{"b/y@d5", "b/x@d2"},
			wantFreed:  50 + 300,
		},
		{
			name:       "size cap oldest: unknown creation time goes last",
			s:          Settings{MaxTotalSize: 6, Aggressive: Oldest},
			wantDelete: []string{"b/z@i1", "b/z@c2", "b/y@d4", "b/x@d1", "b/x@d2", "b/y@d5"},
			wantFreed:  805 - 5,
		},
		{
			name:          "size cap unreachable with protections",
			s:             Settings{MaxTotalSize: 1, MinAge: 15 * day},
			wantDelete:    []string{"b/x@d2", "b/y@d4", "b/x@d1", "b/z@i1", "b/z@c2"},
			wantProtected: []string{"b/x@d3", "b/y@d5"},
			wantOverCap:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.ImagePrefix = inv.Prefix
			tc.s.ConfirmPurge = inv.Prefix
			plan, err := NewPlan(inv, tc.s, nil, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := refs(plan.Delete); !slices.Equal(got, tc.wantDelete) {
				t.Errorf("NewPlan() deletes %q, want %q (in order)", got, tc.wantDelete)
			}
			got := refs(plan.Protected)
			slices.Sort(got)
			if !slices.Equal(got, tc.wantProtected) {
				t.Errorf("NewPlan() protects %q, want %q", got, tc.wantProtected)
			}
			if tc.wantFreed != 0 && plan.FreedBytes != tc.wantFreed {
				t.Errorf("NewPlan() FreedBytes = %d, want %d", plan.FreedBytes, tc.wantFreed)
			}
			if plan.TotalBytes != 805 || plan.RemainingBytes != 805-plan.FreedBytes {
				t.Errorf("NewPlan() TotalBytes, RemainingBytes = %d, %d, want 805, 805-freed", plan.TotalBytes, plan.RemainingBytes)
			}
			if plan.OverCap != tc.wantOverCap {
				t.Errorf("NewPlan() OverCap = %v, want %v", plan.OverCap, tc.wantOverCap)
			}
		})
	}

	t.Run("index children still used are kept", func(t *testing.T) {
		plan, err := NewPlan(inv, Settings{ImagePrefix: inv.Prefix, Patterns: []string{":multi$"}}, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Delete) != 1 || !slices.Equal(plan.Delete[0].DeleteChildren, []string{"c1"}) {
			t.Errorf("NewPlan() = %q deleting children %q, want only b/z@i1 deleting [c1] (c2 is tagged)", refs(plan.Delete), plan.Delete[0].DeleteChildren)
		}
		// c2's blob stays with the tagged arm-only image.
		if plan.FreedBytes != 20 {
			t.Errorf("NewPlan() FreedBytes = %d, want 20", plan.FreedBytes)
		}
	})
	t.Run("purge needs confirmation", func(t *testing.T) {
		if _, err := NewPlan(inv, Settings{ImagePrefix: inv.Prefix, Purge: true, ConfirmPurge: "reg.example/"}, nil, now); err == nil {
			t.Errorf("NewPlan(purge, wrong confirmation) = nil error")
		}
	})
}

func TestOrdinalAndAge(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 102: "102nd"} {
		if got := ordinal(n); got != want {
			t.Errorf("ordinal(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{-time.Hour: "0m", 30 * time.Second: "<1m", 90 * time.Minute: "1h", 47 * time.Hour: "47h", 49 * time.Hour: "2d", 45*day + 12*time.Hour: "45d"} {
		if got := FormatAge(d); got != want {
			t.Errorf("FormatAge(%v) = %q, want %q", d, got, want)
		}
	}
}

// BenchmarkNewPlan plans a registry of 20,000 images in 5,000 repositories
// with every policy on, the size cap included.
func BenchmarkNewPlan(b *testing.B) {
	now := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	var inv Inventory
	var total int64
	for i := range 20000 {
		repo := fmt.Sprintf("b/r2d-repo-%05d", i/4)
		blobs := map[string]int64{"base": 1 << 20, fmt.Sprintf("l%d", i): int64(i%97+1) << 20}
		inv.Images = append(inv.Images, synth(repo, fmt.Sprintf("d%d", i), now.Add(-time.Duration(i%90)*day), blobs, "t"))
		total += blobs[fmt.Sprintf("l%d", i)]
	}
	s := Settings{ImagePrefix: "reg.example/b/", MaxAge: 60 * day, Keep: 3, Patterns: []string{"repo-0001"}, MinAge: time.Hour, MaxTotalSize: units.Bytes(total / 3)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewPlan(inv, s, nil, now); err != nil {
			b.Fatal(err)
		}
	}
}
