package gc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/binderbuild/binderbuild/internal/testregistry"
	"github.com/binderbuild/binderbuild/internal/units"
)

func TestList(t *testing.T) {
	t.Parallel()
	_, f := startFilled(t)
	c := collector(t, Config{})
	inv, err := c.List(t.Context(), Settings{ImagePrefix: f.prefix, Workers: 3})
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	if inv.Registry != f.host || inv.Prefix != f.prefix {
		t.Errorf("List() registry, prefix = %q, %q, want %q, %q", inv.Registry, inv.Prefix, f.host, f.prefix)
	}
	var got []string
	for _, img := range inv.Images {
		k := f.key(img.Repository, img.Digest)
		got = append(got, k)
		im, ok := f.images[k]
		if !ok {
			t.Errorf("List() has %s, not a fixture image", k)
			continue
		}
		if !slices.Equal(img.Tags, im.tags) {
			t.Errorf("%s tags = %q, want %q", k, img.Tags, im.tags)
		}
		if img.Size != im.size {
			t.Errorf("%s size = %d, want %d", k, img.Size, im.size)
		}
		var wantCreated time.Time
		if im.img != nil {
			cf, _ := im.img.ConfigFile()
			wantCreated = cf.Created.Time
		} else {
			wantCreated = testNow().Add(-50 * day)
		}
		if !img.Created.Equal(wantCreated) {
			t.Errorf("%s created = %s, want %s", k, img.Created, wantCreated)
		}
		wantChildren := 0
		if im.index != nil {
			wantChildren = 2
		}
		if len(img.Children) != wantChildren {
			t.Errorf("%s children = %q, want %d", k, img.Children, wantChildren)
		}
	}
	slices.Sort(got)
	if want := underPrefix(); !slices.Equal(got, want) {
		t.Errorf("List() images = %q, want %q (nothing outside the prefix)", got, want)
	}
	if got, want := inv.TotalBytes(), f.total(); got != want {
		t.Errorf("TotalBytes() = %d, want %d (shared layers once)", got, want)
	}
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	_, f := startFilled(t)
	size := func(keys ...string) (n int64) {
		for _, k := range keys {
			n += f.images[k].unique
		}
		return n
	}
	childRef := func(key string, i int) string {
		m, err := f.images[key].index.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		return f.host + "/" + f.images[key].repo + "@" + m.Manifests[i].Digest.String()
	}
	tests := []struct {
		name          string
		settings      Settings
		running       map[string]bool
		wantDelete    []string
		wantProtected []string
		// wantReasons lists the policies (then protections) of some images.
		wantReasons map[string][]string
		wantFreed   int64
		wantOverCap bool
	}{
		{name: "no policy"},
		{
			name:       "max age",
			settings:   Settings{MaxAge: 30 * day},
			wantDelete: []string{"a1", "b1", "d1"},
			wantFreed:  size("a1", "b1", "d1"),
		},
		{
			name:        "keep newest 1 per repository",
			settings:    Settings{Keep: 1},
			wantDelete:  []string{"a1", "a2", "b1"},
			wantReasons: map[string][]string{"a2": {PolicyKeep}},
			wantFreed:   size("a1", "a2", "b1"),
		},
		{
			name:       "keep newest 2",
			settings:   Settings{Keep: 2},
			wantDelete: []string{"a1"},
		},
		{
			name:       "pattern",
			settings:   Settings{Patterns: []string{"ci-2drepos"}},
			wantDelete: []string{"ci"},
		},
		{
			name:       "pattern on a tag",
			settings:   Settings{Patterns: []string{":latest$"}},
			wantDelete: []string{"a3"},
			// a3's 4000 B layer stays with g1, the base with a1 and a2.
			wantFreed: size("a3"),
		},
		{
			name:          "min age protects",
			settings:      Settings{Patterns: []string{"r2d-beta"}, MinAge: time.Hour},
			wantDelete:    []string{"b1"},
			wantProtected: []string{"b2"},
			wantReasons:   map[string][]string{"b2": {PolicyPattern, ProtectMinAge}},
		},
		{
			name:        "size cap, largest first, one image enough",
			settings:    Settings{MaxTotalSize: units.Bytes(f.total() - size("b1")), Aggressive: Largest},
			wantDelete:  []string{"b1"},
			wantReasons: map[string][]string{"b1": {PolicySizeCap}},
			wantFreed:   size("b1"),
		},
		{
			name:       "size cap, largest first, two images",
			settings:   Settings{MaxTotalSize: units.Bytes(f.total() - size("b1") - 1), Aggressive: Largest},
			wantDelete: []string{"b1", "d1"},
			wantFreed:  size("b1", "d1"),
		},
		{
			name:       "size cap, oldest first",
			settings:   Settings{MaxTotalSize: units.Bytes(f.total() - 1), Aggressive: Oldest},
			wantDelete: []string{"a1"},
		},
		{
			name:       "size cap, oldest first, two images",
			settings:   Settings{MaxTotalSize: units.Bytes(f.total() - size("a1") - 1), Aggressive: Oldest},
			wantDelete: []string{"a1", "d1"},
		},
		{
			name:       "size cap after max age",
			settings:   Settings{MaxAge: 30 * day, MaxTotalSize: units.Bytes(f.total() - size("a1", "b1", "d1") - 1), Aggressive: Oldest},
			wantDelete: []string{"a1", "a2", "b1", "d1"},
			wantReasons: map[string][]string{
				"a1": {PolicyMaxAge}, "a2": {PolicySizeCap},
			},
		},
		{
			name:          "size cap skips a running image",
			settings:      Settings{MaxTotalSize: units.Bytes(f.total() - 1), Aggressive: Largest, ProtectRunning: true},
			running:       map[string]bool{f.host + "/binder/r2d-beta-bbbbbb:b1": true},
			wantDelete:    []string{"d1"},
			wantProtected: []string{"b1"},
			wantReasons:   map[string][]string{"b1": {PolicySizeCap, ProtectRunning}},
		},
		{
			name:        "size cap unreachable",
			settings:    Settings{MaxTotalSize: 1, MinAge: 11 * day},
			wantDelete:  []string{"a1", "a2", "b1", "d1"},
			wantOverCap: true,
			// a3, b2, ci and g1 are younger than 11 days.
			wantProtected: []string{"a3", "b2", "ci", "g1"},
		},
		{
			name:     "running pods by tag and by an index's platform digest",
			settings: Settings{MaxAge: 30 * day, ProtectRunning: true},
			running: map[string]bool{
				f.host + "/binder/r2d-beta-bbbbbb:b1": true,
				childRef("d1", 1):                     true,
				"docker.io/library/python:3.12":       true,
			},
			wantDelete:    []string{"a1"},
			wantProtected: []string{"b1", "d1"},
			wantReasons:   map[string][]string{"d1": {PolicyMaxAge, ProtectRunning}},
		},
		{
			name:     "combined",
			settings: Settings{MaxAge: 30 * day, Keep: 2, Patterns: []string{"ci-2drepos"}, MinAge: time.Hour},
			// a1 is old and the 3rd newest of alpha; b1 and d1 old; ci a CI image.
			wantDelete:  []string{"a1", "b1", "ci", "d1"},
			wantReasons: map[string][]string{"a1": {PolicyMaxAge, PolicyKeep}, "ci": {PolicyPattern}},
			wantFreed:   size("a1", "b1", "ci", "d1"),
		},
		{
			name:       "purge",
			settings:   Settings{Purge: true, ConfirmPurge: f.prefix, MinAge: 0},
			wantDelete: underPrefix(),
			wantFreed:  f.total(),
		},
		{
			name:          "purge honours min age",
			settings:      Settings{Purge: true, ConfirmPurge: f.prefix, MinAge: time.Hour},
			wantDelete:    []string{"a1", "a2", "a3", "b1", "ci", "d1", "g1"},
			wantProtected: []string{"b2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.settings
			s.ImagePrefix = f.prefix
			c := collector(t, Config{Pods: fakePods{func() (map[string]bool, error) { return tc.running, nil }}})
			rep, err := c.Run(t.Context(), s)
			if err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if !rep.DryRun {
				t.Errorf("Run() DryRun = false, want true (no Delete)")
			}
			if got := f.resultKeys(rep.Results); !slices.Equal(got, tc.wantDelete) {
				t.Errorf("Run() would delete %q, want %q", got, tc.wantDelete)
			}
			if got := f.keys(rep.Protected); !slices.Equal(got, tc.wantProtected) {
				t.Errorf("Run() protected %q, want %q", got, tc.wantProtected)
			}
			for _, r := range rep.Results {
				if r.Status != StatusWouldDelete || len(r.Reasons) == 0 {
					t.Errorf("result %s: status %q, %d reasons, want %q with reasons", f.key(r.Repository, r.Digest), r.Status, len(r.Reasons), StatusWouldDelete)
				}
			}
			all := append(slices.Clone(rep.Protected), candidatesOf(rep.Results)...)
			for key, want := range tc.wantReasons {
				var got []string
				for _, cand := range all {
					if f.key(cand.Repository, cand.Digest) == key {
						for _, r := range append(slices.Clone(cand.Reasons), cand.Protections...) {
							got = append(got, r.Policy)
						}
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s reasons = %q, want %q", key, got, want)
				}
			}
			if tc.wantFreed != 0 && rep.FreedBytes != tc.wantFreed {
				t.Errorf("Run() FreedBytes = %d, want %d", rep.FreedBytes, tc.wantFreed)
			}
			if rep.TotalBytes != f.total() || rep.RemainingBytes != rep.TotalBytes-rep.FreedBytes {
				t.Errorf("Run() TotalBytes, RemainingBytes = %d, %d, want %d, total - freed", rep.TotalBytes, rep.RemainingBytes, f.total())
			}
			if rep.OverCap != tc.wantOverCap {
				t.Errorf("Run() OverCap = %v, want %v", rep.OverCap, tc.wantOverCap)
			}
		})
	}
	// Dry runs deleted nothing.
	for _, k := range append(underPrefix(), "out1", "out2") {
		if !exists(t, f.ref(k)) {
			t.Errorf("after dry runs, %s (%s) is gone, want present", k, f.ref(k))
		}
	}
}

func candidatesOf(rs []Result) []Candidate {
	var cs []Candidate
	for _, r := range rs {
		cs = append(cs, r.Candidate)
	}
	return cs
}

func TestDryRunDeletesNothing(t *testing.T) {
	t.Parallel()
	_, f := startFilled(t)
	c := collector(t, Config{})
	rep, err := c.Run(t.Context(), Settings{ImagePrefix: f.prefix, Purge: true, ConfirmPurge: f.prefix, Workers: 4})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if got, want := len(rep.Results), len(underPrefix()); got != want || rep.Deleted != 0 || rep.Failed != 0 {
		t.Errorf("Run() = %d results, %d deleted, %d failed, want %d, 0, 0", got, rep.Deleted, rep.Failed, want)
	}
	for _, k := range append(underPrefix(), "out1", "out2") {
		im := f.images[k]
		for _, tag := range im.tags {
			if ref := f.host + "/" + im.repo + ":" + tag; !exists(t, ref) {
				t.Errorf("after a dry run, HEAD %s = 404, want found", ref)
			}
		}
		if !exists(t, f.ref(k)) {
			t.Errorf("after a dry run, HEAD %s = 404, want found", f.ref(k))
		}
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	_, f := startFilled(t)
	c := collector(t, Config{})
	s := Settings{ImagePrefix: f.prefix, MaxAge: 30 * day, Keep: 2, MinAge: time.Hour, Delete: true, Workers: 2}
	inv, err := c.List(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(inv, s, nil, testNow())
	if err != nil {
		t.Fatal(err)
	}
	rep := c.Execute(t.Context(), plan, s)
	want := []string{"a1", "b1", "d1"}
	if got := f.resultKeys(rep.Results); !slices.Equal(got, want) {
		t.Fatalf("Execute() results %q, want %q", got, want)
	}
	for _, r := range rep.Results {
		if r.Status != StatusDeleted || r.Attempts != 1 {
			t.Errorf("%s: status %q after %d attempts (%s), want %q after 1", f.key(r.Repository, r.Digest), r.Status, r.Attempts, r.Error, StatusDeleted)
		}
	}
	if rep.Deleted != 3 || rep.Failed != 0 || rep.DryRun {
		t.Errorf("Execute() deleted %d, failed %d, dry run %v, want 3, 0, false", rep.Deleted, rep.Failed, rep.DryRun)
	}
	wantFreed := f.images["a1"].unique + f.images["b1"].unique + f.images["d1"].unique
	if rep.FreedBytes != wantFreed {
		t.Errorf("Execute() FreedBytes = %d, want %d", rep.FreedBytes, wantFreed)
	}
	for _, k := range append(underPrefix(), "out1", "out2") {
		gone := slices.Contains(want, k)
		if got := exists(t, f.ref(k)); got == gone {
			t.Errorf("after delete, HEAD %s found = %v, want %v", f.ref(k), got, !gone)
		}
		for _, tag := range f.images[k].tags {
			if got := exists(t, f.host+"/"+f.images[k].repo+":"+tag); got == gone {
				t.Errorf("after delete, HEAD tag %s found = %v, want %v", tag, got, !gone)
			}
		}
	}
	// The index's platform manifests went with it.
	m, _ := f.images["d1"].index.IndexManifest()
	for _, child := range m.Manifests {
		if ref := f.host + "/" + f.images["d1"].repo + "@" + child.Digest.String(); exists(t, ref) {
			t.Errorf("after deleting the index, HEAD %s found, want 404", ref)
		}
	}

	// Run again: nothing left to do.
	again, err := c.Run(t.Context(), s)
	if err != nil || len(again.Results) != 0 {
		t.Errorf("second Run() = %d results, %v; want none, nil", len(again.Results), err)
	}
	// Re-executing the old plan (an interrupted run replayed) is harmless:
	// 404 counts as done.
	replay := c.Execute(t.Context(), plan, s)
	for _, r := range replay.Results {
		if r.Status != StatusAlreadyDeleted {
			t.Errorf("replayed %s: status %q (%s), want %q", f.key(r.Repository, r.Digest), r.Status, r.Error, StatusAlreadyDeleted)
		}
	}
	if replay.Failed != 0 || replay.Deleted != 3 {
		t.Errorf("replayed plan: deleted %d, failed %d, want 3, 0", replay.Deleted, replay.Failed)
	}
}

func TestPurgeRefused(t *testing.T) {
	t.Parallel()
	_, f := startFilled(t)
	c := collector(t, Config{})
	for _, confirm := range []string{"", f.prefix + "x", strings.TrimSuffix(f.prefix, "-"), strings.ToUpper(f.prefix)} {
		rep, err := c.Run(t.Context(), Settings{ImagePrefix: f.prefix, Purge: true, ConfirmPurge: confirm, MinAge: 0, Delete: true})
		if !errors.Is(err, ErrPurgeNotConfirmed) || len(rep.Results) != 0 {
			t.Errorf("Run(purge, confirm %q) = %d results, %v; want none, ErrPurgeNotConfirmed", confirm, len(rep.Results), err)
		}
	}
	for _, k := range underPrefix() {
		if !exists(t, f.ref(k)) {
			t.Errorf("after refused purges, %s is gone", k)
		}
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{})
	prefix := reg.Host() + "/binder/r2d-"
	podErr := errors.New("forbidden")
	tests := []struct {
		name     string
		pods     PodImages
		settings Settings
		want     error
	}{
		{"empty prefix", nil, Settings{}, &SettingError{}},
		{"protect running without pods", nil, Settings{ImagePrefix: prefix, ProtectRunning: true}, ErrNoPods},
		{"pod listing fails", fakePods{func() (map[string]bool, error) { return nil, podErr }}, Settings{ImagePrefix: prefix, ProtectRunning: true}, podErr},
		{"bad pattern", nil, Settings{ImagePrefix: prefix, Patterns: []string{"("}}, &SettingError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := collector(t, Config{Pods: tc.pods})
			_, err := c.Run(t.Context(), tc.settings)
			var se *SettingError
			if _, wantSetting := tc.want.(*SettingError); wantSetting && !errors.As(err, &se) || !wantSetting && !errors.Is(err, tc.want) {
				t.Errorf("Run() = %v, want %v", err, tc.want)
			}
		})
	}
	// An empty registry lists nothing and plans nothing.
	rep, err := collector(t, Config{}).Run(t.Context(), Settings{ImagePrefix: prefix, MaxAge: day})
	if err != nil || rep.Images != 0 || len(rep.Results) != 0 {
		t.Errorf("Run(empty registry) = %d images, %d results, %v; want 0, 0, nil", rep.Images, len(rep.Results), err)
	}
}

// BenchmarkList lists 120 images in 60 repositories of a real registry
// (catalog, tags, one manifest and one config per image) with 8 workers.
func BenchmarkList(b *testing.B) {
	reg := testregistry.Start(b, testregistry.Options{})
	for i := range 120 {
		ref, err := name.ParseReference(fmt.Sprintf("%s/binder/r2d-bench-%02d:t%d", reg.Host(), i/2, i))
		if err != nil {
			b.Fatal(err)
		}
		img := build(b, testNow().Add(-time.Duration(i)*day), layer(b, fmt.Sprint("bench", i), 512))
		if err := remote.Write(ref, img, remote.WithContext(b.Context())); err != nil {
			b.Fatal(err)
		}
	}
	c := collector(b, Config{})
	s := Settings{ImagePrefix: reg.Host() + "/binder/r2d-", Workers: 8}
	for b.Loop() {
		inv, err := c.List(b.Context(), s)
		if err != nil || len(inv.Images) != 120 {
			b.Fatalf("List() = %d images, %v", len(inv.Images), err)
		}
	}
}
