package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
)

const warmPath = "/build/gh/org/repo/HEAD?build_only=true"

// warmHandler is the service's real wiring with the caches warm for
// warmPath, and upstream's call counters.
func warmHandler(tb testing.TB) (http.Handler, *fixture, *http.Request) {
	f := newFixture(tb)
	cfg, err := loadConfig(f.env.lookup)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.stdout = io.Discard
	cfg.accessLog = io.Discard // as serve: access lines to the log's writer
	a, err := wire(tb.Context(), cfg, f.env.getenv, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, warmPath, nil)
	req.Header.Set("Accept", "text/event-stream")
	w := &responseWriter{header: http.Header{}}
	a.handler.ServeHTTP(w, req) // warm the caches
	if !strings.Contains(w.body.String(), `"phase": "ready"`) {
		tb.Fatalf("not a cache hit: %s", w.body.String())
	}
	return a.handler, f, req
}

// responseWriter is what the handler needs of net/http's writer, reused
// between requests so that it allocates nothing itself.
type responseWriter struct {
	header http.Header
	body   bytes.Buffer
}

func (w *responseWriter) Header() http.Header              { return w.header }
func (w *responseWriter) Write(p []byte) (int, error)      { return w.body.Write(p) }
func (w *responseWriter) WriteHeader(int)                  {}
func (w *responseWriter) Flush()                           {}
func (w *responseWriter) SetWriteDeadline(time.Time) error { return nil }

func (w *responseWriter) reset() {
	w.body.Reset()
	clear(w.header)
}

// BenchmarkWarmHitHandler measures the server's own time and allocations
// for a warm cache hit (ref resolved and image found before), calling the
// wired handler directly, and counts upstream calls during the loop.
func BenchmarkWarmHitHandler(b *testing.B) {
	h, f, req := warmHandler(b)
	w := &responseWriter{header: http.Header{}}
	gh, reg := f.github.calls.Load(), f.registry.calls.Load()
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, req)
		if w.body.Len() == 0 {
			b.Fatal("empty response")
		}
	}
	b.ReportMetric(float64(f.github.calls.Load()-gh+f.registry.calls.Load()-reg)/float64(b.N), "upstream-calls/op")
}

// TestWarmHitAllocations holds the warm path to its allocation budget
// (issue 17: at most 40 per request) and to no upstream call.
func TestWarmHitAllocations(t *testing.T) {
	const budget = 40
	h, f, req := warmHandler(t)
	w := &responseWriter{header: http.Header{}}
	gh, reg := f.github.calls.Load(), f.registry.calls.Load()
	allocs := testing.AllocsPerRun(200, func() {
		w.reset()
		h.ServeHTTP(w, req)
	})
	if allocs > budget {
		t.Errorf("a warm cache hit allocates %.0f times, budget %d", allocs, budget)
	}
	if calls := f.github.calls.Load() - gh + f.registry.calls.Load() - reg; calls != 0 {
		t.Errorf("%d GitHub and registry calls for warm hits, want 0", calls)
	}
}

// BenchmarkWarmHit64Clients compares, in one run on one machine, 64
// concurrent keep-alive clients making warm build_only requests to the
// running service with the same clients fetching the same single event from
// a bare net/http handler. ratio = service req/s ÷ bare req/s.
func BenchmarkWarmHit64Clients(b *testing.B) {
	const clients, perRound = 64, 6400
	f := newFixture(b)
	base := serveT(b, f.env)
	image := binderbuild.ImageName(f.prefix, "org-repo", headSHA)
	frame := []byte("data: " + `{"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n")
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(frame) //nolint:errcheck // benchmark peer
		w.(http.Flusher).Flush()
	}))
	b.Cleanup(bare.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	load(b, client, base+warmPath, clients, clients) // warm caches and connections
	load(b, client, bare.URL+warmPath, clients, clients)
	gh, reg := f.github.calls.Load(), f.registry.calls.Load()
	var svc, ref time.Duration
	rounds := 0
	for b.Loop() {
		svc += load(b, client, base+warmPath, clients, perRound)
		ref += load(b, client, bare.URL+warmPath, clients, perRound)
		rounds++
	}
	svcRate := float64(rounds*perRound) / svc.Seconds()
	refRate := float64(rounds*perRound) / ref.Seconds()
	b.ReportMetric(svcRate, "binderbuild-req/s")
	b.ReportMetric(refRate, "bare-req/s")
	b.ReportMetric(svcRate/refRate, "ratio")
	b.ReportMetric(float64(f.github.calls.Load()-gh+f.registry.calls.Load()-reg), "upstream-calls")
}

// load makes n requests over the given number of concurrent clients and
// returns the wall time taken.
func load(b *testing.B, c *http.Client, url string, clients, n int) time.Duration {
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
				req.Header.Set("Accept", "text/event-stream")
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck // drained to reuse the connection
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
