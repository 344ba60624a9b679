package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testServer is ggcr's in-memory registry behind a handler that counts
// requests and can fail or hold manifest HEAD requests.
type testServer struct {
	*httptest.Server
	// requests counts every request, heads the manifest HEAD requests.
	requests, heads atomic.Int64
	// failHeads is the number of manifest HEADs still to fail with
	// failStatus; negative fails all.
	failHeads  atomic.Int64
	failStatus atomic.Int64
	// hold, when set, is closed by the test to release held HEADs; arrived
	// receives a value when a HEAD starts waiting.
	hold    chan struct{}
	arrived chan struct{}
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	ts := &testServer{}
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.requests.Add(1)
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			ts.heads.Add(1)
			if ts.hold != nil {
				ts.arrived <- struct{}{}
				<-ts.hold
			}
			if n := ts.failHeads.Load(); n != 0 {
				ts.failHeads.Add(-1)
				w.WriteHeader(int(ts.failStatus.Load()))
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// host returns the server's "127.0.0.1:port".
func (ts *testServer) host() string { return strings.TrimPrefix(ts.URL, "http://") }

// failNext makes the next n manifest HEADs (all if n < 0) answer status.
func (ts *testServer) failNext(n int, status int) {
	ts.failStatus.Store(int64(status))
	ts.failHeads.Store(int64(n))
}

// push writes a random image to image.
func push(t testing.TB, image string, opts ...remote.Option) {
	t.Helper()
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, append(opts, remote.WithContext(context.Background()))...); err != nil {
		t.Fatalf("push %s: %v", image, err)
	}
}

// push writes a random image to image on ts and zeroes the request
// counters (a push makes requests, a manifest HEAD among them).
func (ts *testServer) push(t testing.TB, image string) {
	t.Helper()
	push(t, image)
	ts.requests.Store(0)
	ts.heads.Store(0)
}

// fakeClock is the negative cache's clock in tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestChecker returns a Checker with fast retries, a fake clock and no
// credentials.
func newTestChecker(t testing.TB, cfg Config, m *Metrics) (*Checker, *fakeClock) {
	t.Helper()
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	if cfg.Keychain == nil {
		cfg.Keychain = anonymous{}
	}
	c, err := NewChecker(cfg, m, nil)
	if err != nil {
		t.Fatalf("NewChecker(%+v) = %v", cfg, err)
	}
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.now = clock.Now
	return c, clock
}

func TestExists(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.push(t, ts.host()+"/binder/r2d-present-abc123:0123abcd")
	c, _ := newTestChecker(t, Config{}, nil)
	tests := []struct {
		name, image string
		want        bool
	}{
		{"found", ts.host() + "/binder/r2d-present-abc123:0123abcd", true},
		{"missing tag", ts.host() + "/binder/r2d-present-abc123:ffff0000", false},
		{"missing repository", ts.host() + "/binder/r2d-absent-def456:0123abcd", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Exists(t.Context(), tc.image)
			if got != tc.want || err != nil {
				t.Errorf("Exists(%q) = %v, %v, want %v, nil", tc.image, got, err, tc.want)
			}
		})
	}
}

func TestExistsInvalidName(t *testing.T) {
	t.Parallel()
	c, _ := newTestChecker(t, Config{}, nil)
	for _, image := range []string{"", "UPPER/case:tag", "a:b:c:d"} {
		if got, err := c.Exists(t.Context(), image); got || err == nil || !strings.HasPrefix(err.Error(), "check image ") {
			t.Errorf("Exists(%q) = %v, %v, want false, a \"check image ...\" error", image, got, err)
		}
	}
}

func TestExistsCachesFound(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	image := ts.host() + "/binder/r2d-cached-abc123:v1"
	ts.push(t, image)
	c, clock := newTestChecker(t, Config{}, nil)

	if got, err := c.Exists(t.Context(), image); !got || err != nil {
		t.Fatalf("Exists(%q) = %v, %v, want true, nil", image, got, err)
	}
	before := ts.requests.Load()
	clock.Advance(DefaultPositiveTTL - time.Second)
	if got, err := c.Exists(t.Context(), image); !got || err != nil {
		t.Fatalf("second Exists(%q) = %v, %v, want true, nil", image, got, err)
	}
	if got := ts.requests.Load() - before; got != 0 {
		t.Errorf("second Exists(%q) made %d registry requests, want 0", image, got)
	}
}

// An image deleted from the registry behind the service's back is reported
// as built for at most PositiveTTL; one that binderbuild gc deleted, not at
// all once the cache is told (Forget).
func TestExistsForgetsDeletedImages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	image := ts.host() + "/binder/r2d-deleted-abc123:v1"
	other := ts.host() + "/binder/r2d-gcd-abc123:v1"
	ts.push(t, image)
	ts.push(t, other)
	c, clock := newTestChecker(t, Config{}, nil)
	existsThenDelete := func(img string) {
		t.Helper()
		if got, err := c.Exists(t.Context(), img); !got || err != nil {
			t.Fatalf("Exists(%q) = %v, %v, want true, nil", img, got, err)
		}
		ref, err := name.ParseReference(img, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Delete(ref); err != nil {
			t.Fatal(err)
		}
	}
	existsThenDelete(image)
	clock.Advance(DefaultPositiveTTL)
	if got, err := c.Exists(t.Context(), image); got || err != nil {
		t.Errorf("Exists(%q) a TTL after its deletion = %v, %v, want false, nil", image, got, err)
	}
	existsThenDelete(other)
	c.Forget() // what the gc schedule does after deleting
	if got, err := c.Exists(t.Context(), other); got || err != nil {
		t.Errorf("Exists(%q) after gc = %v, %v, want false, nil", other, got, err)
	}
}

func TestExistsCachesNotFoundForTTL(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	image := ts.host() + "/binder/r2d-later-abc123:v1"
	c, clock := newTestChecker(t, Config{NegativeTTL: 5 * time.Second}, nil)

	if got, err := c.Exists(t.Context(), image); got || err != nil {
		t.Fatalf("Exists(%q) = %v, %v, want false, nil", image, got, err)
	}
	// The image appears, but the negative answer holds for the TTL.
	ts.push(t, image)
	before := ts.requests.Load()
	clock.Advance(4 * time.Second)
	if got, err := c.Exists(t.Context(), image); got || err != nil {
		t.Errorf("Exists(%q) within the TTL = %v, %v, want cached false, nil", image, got, err)
	}
	if got := ts.requests.Load() - before; got != 0 {
		t.Errorf("Exists(%q) within the TTL made %d registry requests, want 0", image, got)
	}
	clock.Advance(time.Second)
	if got, err := c.Exists(t.Context(), image); !got || err != nil {
		t.Errorf("Exists(%q) after the TTL = %v, %v, want true, nil", image, got, err)
	}
	if got := ts.requests.Load() - before; got == 0 {
		t.Errorf("Exists(%q) after the TTL made no registry request, want at least 1", image)
	}
}

func TestExistsRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fail      int // manifest HEADs to fail; -1 = all
		status    int
		want      bool
		wantErr   string // substring; "" = no error
		wantHeads int64
	}{
		{"500 then success", 2, http.StatusInternalServerError, true, "", 3},
		{"503 then success", 1, http.StatusServiceUnavailable, true, "", 2},
		{"429 then success", 1, http.StatusTooManyRequests, true, "", 2},
		{"500 exhausted", -1, http.StatusInternalServerError, false, "unreachable after 3 attempts", 3},
		{"502 exhausted", -1, http.StatusBadGateway, false, "unreachable after 3 attempts", 3},
		{"400 not retried", -1, http.StatusBadRequest, false, "400 Bad Request", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			image := ts.host() + "/binder/r2d-flaky-abc123:v1"
			ts.push(t, image)
			ts.failNext(tc.fail, tc.status)
			c, _ := newTestChecker(t, Config{}, nil)

			got, err := c.Exists(t.Context(), image)
			if got != tc.want {
				t.Errorf("Exists(%q) = %v, %v, want %v", image, got, err, tc.want)
			}
			if n := ts.heads.Load(); n != tc.wantHeads {
				t.Errorf("Exists(%q) made %d manifest HEADs, want %d", image, n, tc.wantHeads)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Exists(%q) error = %v, want nil", image, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Exists(%q) error = nil, want one containing %q", image, tc.wantErr)
			}
			prefix := "check image " + image + ": registry " + ts.host()
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.wantErr) {
				t.Errorf("Exists(%q) error = %q, want prefix %q and %q", image, msg, prefix, tc.wantErr)
			}
			var terr *transport.Error
			if !errors.As(err, &terr) || terr.StatusCode != tc.status {
				t.Errorf("Exists(%q) error = %v, want a wrapped *transport.Error with status %d", image, err, tc.status)
			}
			if errors.Is(err, ErrUnauthorized) {
				t.Errorf("Exists(%q) error = %v, want not ErrUnauthorized", image, err)
			}
			// Errors are not cached: the next check asks again, and succeeds.
			ts.failNext(0, 0)
			heads := ts.heads.Load()
			if got, err := c.Exists(t.Context(), image); !got || err != nil {
				t.Errorf("Exists(%q) after recovery = %v, %v, want true, nil", image, got, err)
			}
			if ts.heads.Load() == heads {
				t.Errorf("Exists(%q) after an error made no request, want the error not cached", image)
			}
		})
	}
}

func TestExistsUnauthorized(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			image := ts.host() + "/binder/r2d-private-abc123:v1"
			ts.push(t, image)
			ts.failNext(-1, status)
			c, _ := newTestChecker(t, Config{}, nil)
			got, err := c.Exists(t.Context(), image)
			if got || !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Exists(%q) = %v, %v, want false, ErrUnauthorized", image, got, err)
			}
			if n := ts.heads.Load(); n != 1 {
				t.Errorf("Exists(%q) made %d manifest HEADs, want 1 (no retry)", image, n)
			}
		})
	}
}

func TestExistsUnreachable(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	host := ts.host()
	ts.Close()
	c, _ := newTestChecker(t, Config{}, nil)
	image := host + "/binder/r2d-gone-abc123:v1"
	got, err := c.Exists(t.Context(), image)
	want := "check image " + image + ": registry " + host + " unreachable after 3 attempts: "
	if got || err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Exists(%q) = %v, %v, want false, error starting %q", image, got, err, want)
	}
}

func TestExistsInsecureHosts(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.push(t, ts.host()+"/binder/r2d-insecure-abc123:v1")
	// registry.test is no loopback name, so ggcr uses HTTPS unless the host
	// is listed as insecure. Dial the test server whatever the name.
	_, port, _ := net.SplitHostPort(ts.host())
	host := "registry.test:" + port
	image := host + "/binder/r2d-insecure-abc123:v1"
	dialer := &net.Dialer{}
	newTransport := func() http.RoundTripper {
		return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, ts.host())
		}}
	}
	tests := []struct {
		name     string
		insecure []string
		want     bool
		wantErr  bool
	}{
		{"listed", []string{" other:1", "REGISTRY.test:" + port}, true, false},
		{"not listed", nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestChecker(t, Config{InsecureHosts: tc.insecure, Transport: newTransport()}, nil)
			got, err := c.Exists(t.Context(), image)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("Exists(%q) with InsecureHosts %q = %v, %v, want %v, error %v", image, tc.insecure, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestExistsCoalesces(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	image := ts.host() + "/binder/r2d-popular-abc123:v1"
	ts.push(t, image)
	ts.hold = make(chan struct{})
	ts.arrived = make(chan struct{}, 8) // a second HEAD (a bug) must not block
	c, _ := newTestChecker(t, Config{}, nil)
	const callers = 5
	var joined sync.WaitGroup
	joined.Add(callers)
	c.joined = joined.Done

	// The first caller starts the check and leaves before it ends.
	firstCtx, leave := context.WithCancel(t.Context())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.Exists(firstCtx, image)
		firstErr <- err
	}()
	<-ts.arrived // the shared HEAD is at the registry
	type result struct {
		found bool
		err   error
	}
	results := make(chan result, callers-1)
	for range callers - 1 {
		go func() {
			found, err := c.Exists(t.Context(), image)
			results <- result{found, err}
		}()
	}
	joined.Wait()
	leave()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Exists of the caller that left = %v, want context.Canceled", err)
	}
	close(ts.hold)
	for range callers - 1 {
		if r := <-results; !r.found || r.err != nil {
			t.Errorf("Exists(%q) = %v, %v, want true, nil", image, r.found, r.err)
		}
	}
	if n := ts.heads.Load(); n != 1 {
		t.Errorf("%d concurrent Exists(%q) made %d manifest HEADs, want 1", callers, image, n)
	}
	// The shared check filled the cache.
	before := ts.requests.Load()
	c.joined = nil
	if got, err := c.Exists(t.Context(), image); !got || err != nil || ts.requests.Load() != before {
		t.Errorf("Exists(%q) after the shared check = %v, %v with %d requests, want true, nil from the cache", image, got, err, ts.requests.Load()-before)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	closed := newTestServer(t)
	closed.Close()
	forbidden := newTestServer(t)
	forbidden.failNext(-1, http.StatusForbidden)
	tests := []struct {
		name      string
		prefix    string
		wantErr   bool
		wantUnath bool
	}{
		{"probe not found is healthy", ts.host() + "/binder/r2d-", false, false},
		{"prefix is normalized", ts.host() + "/Binder_Org/r2d-", false, false},
		{"registry down", closed.host() + "/binder/r2d-", true, false},
		{"forbidden", forbidden.host() + "/binder/r2d-", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestChecker(t, Config{ImagePrefix: tc.prefix}, nil)
			err := c.Check(t.Context())
			if (err != nil) != tc.wantErr || errors.Is(err, ErrUnauthorized) != tc.wantUnath {
				t.Errorf("Check() with prefix %q = %v, want error %v, unauthorized %v", tc.prefix, err, tc.wantErr, tc.wantUnath)
			}
		})
	}
	// The probe image existing is healthy too.
	ts.push(t, ts.host()+"/binder/r2d-"+healthProbe)
	c, _ := newTestChecker(t, Config{ImagePrefix: ts.host() + "/binder/r2d-"}, nil)
	if err := c.Check(t.Context()); err != nil {
		t.Errorf("Check() with the probe image present = %v, want nil", err)
	}
}

func TestNewCheckerInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"invalid prefix", Config{ImagePrefix: "registry.example.com/a b/"}},
		{"negative TTL", Config{NegativeTTL: -time.Second}},
		{"negative attempts", Config{Attempts: -1}},
	}
	for _, tc := range tests {
		if _, err := NewChecker(tc.cfg, nil, nil); err == nil {
			t.Errorf("NewChecker(%s) = nil error, want one", tc.name)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	found := ts.host() + "/binder/r2d-metrics-abc123:v1"
	push(t, found)
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	c, _ := newTestChecker(t, Config{}, m)

	c.Exists(t.Context(), found)                                  // found: 1 ok request
	c.Exists(t.Context(), found)                                  // cached
	c.Exists(t.Context(), ts.host()+"/binder/r2d-none-abc123:v1") // not_found
	ts.failNext(-1, http.StatusInternalServerError)
	c.Exists(t.Context(), ts.host()+"/binder/r2d-err-abc123:v1") // error: 3 error requests
	ts.failNext(-1, http.StatusUnauthorized)
	c.Exists(t.Context(), ts.host()+"/binder/r2d-auth-abc123:v1") // error: 1 unauthorized request

	requests := []struct {
		outcome requestOutcome
		want    float64
	}{
		{requestOK, 1}, {requestNotFound, 1}, {requestError, 3}, {requestUnauthorized, 1},
	}
	for _, tc := range requests {
		if got := testutil.ToFloat64(m.requests[tc.outcome]); got != tc.want {
			t.Errorf("binderbuild_registry_requests_total{outcome=%q} = %v, want %v", tc.outcome, got, tc.want)
		}
	}
	checks := []struct {
		outcome checkOutcome
		want    uint64
	}{
		{checkFound, 1}, {checkCached, 1}, {checkNotFound, 1}, {checkError, 2},
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "binderbuild_registry_check_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	for _, tc := range checks {
		if got := counts[tc.outcome.String()]; got != tc.want {
			t.Errorf("binderbuild_registry_check_seconds_count{outcome=%q} = %d, want %d", tc.outcome, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(reg); n != 8 {
		t.Errorf("CollectAndCount() = %d series, want 8 (4 outcomes each, pre-created)", n)
	}
}

// BenchmarkExistsCached measures the warm path: a positive cache hit, with
// metrics on. It fails if the timed loop sends any registry request.
func BenchmarkExistsCached(b *testing.B) {
	ts := newTestServer(b)
	image := ts.host() + "/binder/r2d-bench-abc123:0123456789abcdef0123456789abcdef01234567"
	ts.push(b, image)
	c, _ := newTestChecker(b, Config{}, NewMetrics(prometheus.NewRegistry()))
	if got, err := c.Exists(b.Context(), image); !got || err != nil {
		b.Fatalf("Exists(%q) = %v, %v, want true, nil", image, got, err)
	}
	before := ts.requests.Load()
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := c.Exists(ctx, image); !ok || err != nil {
			b.Fatalf("Exists(%q) = %v, %v", image, ok, err)
		}
	}
	b.StopTimer()
	if n := ts.requests.Load() - before; n != 0 {
		b.Fatalf("warm Exists made %d registry requests, want 0", n)
	}
}

// anonymous is a keychain without credentials, so tests do not read the
// machine's docker config.
type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }
