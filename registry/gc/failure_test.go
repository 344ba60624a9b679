package gc

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// flakyProxy forwards to a registry and, after a number of DELETE
// requests, fails the others: with HTTP 500, or by dropping the connection.
type flakyProxy struct {
	next http.Handler
	drop bool

	mu sync.Mutex
	// allowed is how many more DELETEs are forwarded; -1 = all.
	allowed int
	// deletes counts DELETE requests by path.
	deletes map[string]int
}

func (p *flakyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		p.mu.Lock()
		p.deletes[r.URL.Path]++
		pass := p.allowed != 0
		if p.allowed > 0 {
			p.allowed--
		}
		p.mu.Unlock()
		if !pass {
			if p.drop {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`))
			return
		}
	}
	p.next.ServeHTTP(w, r)
}

// setAllowed changes how many more DELETEs pass.
func (p *flakyProxy) setAllowed(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed = n
}

// deleted returns the number of DELETE requests for path.
func (p *flakyProxy) deleted(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deletes[path]
}

func TestRegistryFailsHalfway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop bool
	}{{"500 after 3 deletions", false}, {"connections dropped after 3 deletions", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg, direct := startFilled(t)
			u, err := url.Parse(reg.URL())
			if err != nil {
				t.Fatal(err)
			}
			proxy := &flakyProxy{next: httputil.NewSingleHostReverseProxy(u), drop: tc.drop, allowed: 3, deletes: make(map[string]int)}
			srv := httptest.NewServer(proxy)
			t.Cleanup(srv.Close)
			host := strings.TrimPrefix(srv.URL, "http://")
			prefix := host + "/binder/r2d-"

			c := collector(t, Config{Attempts: 2})
			s := Settings{ImagePrefix: prefix, Purge: true, ConfirmPurge: prefix, Delete: true, Workers: 2}
			inv, err := c.List(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := NewPlan(inv, s, nil, testNow())
			if err != nil {
				t.Fatal(err)
			}
			rep := c.Execute(t.Context(), plan, s)
			if len(rep.Results) != len(underPrefix()) {
				t.Fatalf("Execute() has %d results, want %d", len(rep.Results), len(underPrefix()))
			}
			if rep.Deleted < 1 || rep.Failed < 1 || rep.Deleted+rep.Failed != len(rep.Results) {
				t.Errorf("Execute() deleted %d, failed %d of %d; want some of each, all accounted for", rep.Deleted, rep.Failed, len(rep.Results))
			}
			for _, r := range rep.Results {
				path := "/v2/" + strings.TrimPrefix(r.Repository, host+"/") + "/manifests/" + r.Digest
				if n := proxy.deleted(path); n == 0 {
					t.Errorf("%s was never attempted, want every image attempted", r.Ref())
				}
				switch r.Status {
				case StatusDeleted:
				case StatusFailed:
					// A failed manifest was tried twice; a failed index
					// was deleted, its platform manifests were not.
					if r.Error == "" || (r.Attempts != 2 && !strings.Contains(r.Error, "child manifest")) {
						t.Errorf("%s failed after %d attempts with error %q, want 2 attempts (or a child failure) and an error", r.Ref(), r.Attempts, r.Error)
					}
				default:
					t.Errorf("%s status %q, want deleted or failed", r.Ref(), r.Status)
				}
			}
			var table bytes.Buffer
			if err := WriteTable(&table, rep); err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(table.String(), "\nFAILED "); got != rep.Failed {
				t.Errorf("table has %d FAILED rows, want %d:\n%s", got, rep.Failed, table.String())
			}

			// Collector.Run returns the same outcome as an error.
			proxy.setAllowed(0)
			_, err = c.Run(t.Context(), s)
			var derr *DeleteError
			if !errors.As(err, &derr) || derr.Failed == 0 {
				t.Errorf("Run() against a failing registry = %v, want a *DeleteError", err)
			}

			// The registry recovers: a new run finishes the job, and
			// replaying the first plan is harmless.
			proxy.setAllowed(-1)
			again, err := c.Run(t.Context(), s)
			if err != nil || again.Failed != 0 {
				t.Fatalf("Run() after recovery = %d failed, %v; want 0, nil", again.Failed, err)
			}
			replay := c.Execute(t.Context(), plan, s)
			if replay.Failed != 0 || replay.Deleted != len(underPrefix()) {
				t.Errorf("replayed plan: deleted %d, failed %d, want %d, 0", replay.Deleted, replay.Failed, len(underPrefix()))
			}
			for _, k := range underPrefix() {
				if exists(t, direct.ref(k)) {
					t.Errorf("after recovery, %s is still there", k)
				}
			}
			for _, k := range []string{"out1", "out2"} {
				if !exists(t, direct.ref(k)) {
					t.Errorf("%s outside the prefix is gone", k)
				}
			}
		})
	}
}

// dirSize adds up the sizes of the files under dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// storageRoot reads rootdirectory from the registry's configuration.
func storageRoot(t testing.TB, config string) string {
	t.Helper()
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "rootdirectory:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	t.Fatalf("no rootdirectory in %s", config)
	return ""
}

// TestGarbageCollectReclaimsSpace shows that deleting manifests frees no
// disk space by itself: the distribution registry's own garbage
// collection does, by at least the bytes the report announced.
func TestGarbageCollectReclaimsSpace(t *testing.T) {
	t.Parallel()
	reg, f := startFilled(t)
	blobs := filepath.Join(storageRoot(t, reg.ConfigPath()), "docker", "registry", "v2", "blobs")
	before := dirSize(t, blobs)

	c := collector(t, Config{})
	rep, err := c.Run(t.Context(), Settings{ImagePrefix: f.prefix, MaxAge: 30 * day, Delete: true})
	if err != nil || rep.Deleted != 3 {
		t.Fatalf("Run() = %d deleted, %v; want 3, nil", rep.Deleted, err)
	}
	afterDelete := dirSize(t, blobs)
	if afterDelete != before {
		t.Errorf("blob store after deleting = %d bytes, want unchanged %d (deletes only unlink)", afterDelete, before)
	}

	out, err := exec.CommandContext(t.Context(), testregistry.DefaultBinary, "garbage-collect", reg.ConfigPath()).CombinedOutput()
	if err != nil {
		t.Fatalf("docker-registry garbage-collect: %v\n%s", err, out)
	}
	afterGC := dirSize(t, blobs)
	t.Logf("blob store: %d bytes before, %d after deleting, %d after garbage-collect (report: %d bytes freed)", before, afterDelete, afterGC, rep.FreedBytes)
	if shrunk := before - afterGC; shrunk < rep.FreedBytes {
		t.Errorf("garbage-collect shrank the blob store by %d bytes, want at least the %d bytes the report freed", shrunk, rep.FreedBytes)
	}
	for _, k := range []string{"a2", "a3", "b2", "ci", "g1"} {
		if !exists(t, f.ref(k)) {
			t.Errorf("after garbage-collect, kept image %s is gone", k)
		}
	}
}

func TestSchedulerRunsAndRecordsMetrics(t *testing.T) {
	t.Parallel()
	_, f := startFilled(t)
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	c := collector(t, Config{Metrics: m})
	s, err := NewScheduler(c, Settings{ImagePrefix: f.prefix, MaxAge: 30 * day, Delete: true, Workers: 2, Schedule: "@every 6h"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	s.now = testNow
	s.after = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		ch := make(chan time.Time, 1)
		ch <- testNow().Add(d)
		return ch
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var runs []error
	s.done = func(rep Report, err error) {
		runs = append(runs, err)
		if len(runs) == 2 {
			cancel()
		}
	}
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil after cancel", err)
	}
	if len(runs) != 2 || runs[0] != nil || runs[1] != nil {
		t.Fatalf("runs = %v, want two successful runs", runs)
	}
	if len(waits) < 1 || waits[0] != 6*time.Hour {
		t.Errorf("waits = %v, want 6h first", waits)
	}
	freed := f.images["a1"].unique + f.images["b1"].unique + f.images["d1"].unique
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"images_deleted_total", testutil.ToFloat64(m.deletedImages), 3},
		{"bytes_deleted_total", testutil.ToFloat64(m.deletedBytes), float64(freed)},
		{"deletions_failed_total", testutil.ToFloat64(m.failedDeletions), 0},
		{"registry_images", testutil.ToFloat64(m.registryImages), float64(len(underPrefix()) - 3)},
		{"registry_bytes", testutil.ToFloat64(m.registryBytes), float64(f.total() - freed)},
		{"last_run_success", testutil.ToFloat64(m.lastSuccess), 1},
		{"last_run_timestamp_seconds", testutil.ToFloat64(m.lastRun), float64(testNow().Unix())},
		{`runs_total{outcome="success"}`, testutil.ToFloat64(m.runs.WithLabelValues(outcomeSuccess)), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("binderbuild_gc_%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 9 {
		t.Errorf("GatherAndCount() = %d, %v; want 9 series, nil", n, err)
	}
}

func TestNewSchedulerRejects(t *testing.T) {
	t.Parallel()
	c := collector(t, Config{})
	for _, s := range []Settings{
		{ImagePrefix: "r.example/b-"},
		{ImagePrefix: "r.example/b-", Schedule: "every day"},
		{ImagePrefix: "r.example/b-", Schedule: "@every 1d"},
		{ImagePrefix: "r.example/b-", Schedule: "@daily", Purge: true, ConfirmPurge: "r.example/b-"},
		{Schedule: "@daily"},
	} {
		if _, err := NewScheduler(c, s, nil); err == nil {
			t.Errorf("NewScheduler(schedule %q, purge %v, prefix %q) = nil error, want an error", s.Schedule, s.Purge, s.ImagePrefix)
		}
	}
	for _, spec := range []string{"@daily", "@hourly", "@every 6h", "0 3 * * *", "CRON_TZ=Europe/Berlin 30 2 * * 0"} {
		if _, err := NewScheduler(c, Settings{ImagePrefix: "r.example/b-", Schedule: Schedule(spec)}, nil); err != nil {
			t.Errorf("NewScheduler(%q) = %v, want nil", spec, err)
		}
	}
}
