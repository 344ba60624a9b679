package repoproviders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
)

// fakeProvider is a Provider whose Resolve is ResolveFn; it counts calls.
type fakeProvider struct {
	ResolveFn func(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error)
	calls     atomic.Int32
	parses    atomic.Int32
}

func (f *fakeProvider) Prefix() string { return "fake" }

func (f *fakeProvider) Parse(spec string) (binderbuild.Repo, error) {
	f.parses.Add(1)
	ref, ok := strings.CutPrefix(spec, "repo/")
	if !ok {
		return binderbuild.Repo{}, errors.New("not repo/<ref>")
	}
	return binderbuild.Repo{Provider: "fake", ProviderName: "Fake", Spec: spec, URL: "https://example.org/repo", Ref: ref}, nil
}

func (f *fakeProvider) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	f.calls.Add(1)
	return f.ResolveFn(ctx, repo)
}

func (f *fakeProvider) Display() any { return "fake display" }

// resolvedAs returns repo resolved to sha.
func resolvedAs(repo binderbuild.Repo, sha string) binderbuild.Resolved {
	return binderbuild.Resolved{Repo: repo, ResolvedRef: sha, ResolvedSpec: "repo/" + sha}
}

// resolveTo returns a ResolveFn that resolves every ref to sha.
func resolveTo(sha string) func(context.Context, binderbuild.Repo) (binderbuild.Resolved, error) {
	return func(_ context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
		return resolvedAs(repo, sha), nil
	}
}

// newTestCache wraps next with a 60s cache whose clock the test moves.
func newTestCache(next Provider, m *Metrics) (*CachedProvider, *time.Time) {
	c := Cached(next, 0, 0, m)
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }
	return c, &now
}

// A spec that parsed is not parsed again; one that did not is, each time.
func TestCachedParsesOnce(t *testing.T) {
	f := &fakeProvider{}
	c := Cached(f, 0, 0, nil)
	want, _ := f.Parse("repo/main")
	for range 3 {
		if got, err := c.Parse("repo/main"); err != nil || got != want {
			t.Fatalf("Parse = %+v, %v; want %+v", got, err, want)
		}
		if _, err := c.Parse("nope"); err == nil {
			t.Fatal("Parse(nope) succeeded")
		}
	}
	if got := f.parses.Load(); got != 1+1+3 {
		t.Errorf("%d parses, want 5: one of repo/main, one for want, three of nope", got)
	}
	long := "repo/" + strings.Repeat("b", maxParsedSpec)
	for range 2 {
		if _, err := c.Parse(long); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.parses.Load(); got != 5+2 || c.parsed.Len() != 1 {
		t.Errorf("%d parses and %d specs kept after a long spec twice, want 7 and 1: long specs are not kept", got, c.parsed.Len())
	}
}

func TestCachedForwards(t *testing.T) {
	c := Cached(&fakeProvider{}, 0, 0, nil)
	if got := c.Prefix(); got != "fake" {
		t.Errorf("Prefix() = %q, want fake", got)
	}
	if got := c.Display(); got != "fake display" {
		t.Errorf("Display() = %v, want the wrapped provider's", got)
	}
	if repo, err := c.Parse("repo/main"); err != nil || repo.Ref != "main" {
		t.Errorf("Parse() = %+v, %v; want the wrapped provider's", repo, err)
	}
	if c.ttl != DefaultCacheTTL {
		t.Errorf("default TTL = %v, want %v", c.ttl, DefaultCacheTTL)
	}
}

func TestCachedTTL(t *testing.T) {
	sha := "1111111111111111111111111111111111111111"
	fake := &fakeProvider{ResolveFn: resolveTo(sha)}
	m, reg := newTestMetrics(t)
	c, now := newTestCache(fake, m)

	steps := []struct {
		advance   time.Duration
		wantCalls int32
	}{
		{0, 1},
		{30 * time.Second, 1},
		{29 * time.Second, 1}, // 59s after the first call
		{time.Second, 2},      // 60s: expired
		{59 * time.Second, 2},
		{61 * time.Second, 3},
	}
	for i, s := range steps {
		*now = now.Add(s.advance)
		got, err := resolveSpec(t, c, "repo/main")
		if err != nil || got.ResolvedRef != sha {
			t.Fatalf("step %d: Resolve = %q, %v; want %q", i, got.ResolvedRef, err, sha)
		}
		if got.Spec != "repo/main" || got.Ref != "main" {
			t.Errorf("step %d: Resolve().Repo = %+v, want the caller's repo", i, got.Repo)
		}
		if calls := fake.calls.Load(); calls != s.wantCalls {
			t.Errorf("step %d: upstream calls = %d, want %d", i, calls, s.wantCalls)
		}
	}
	if got := histogramCount(t, reg, "binderbuild_ref_resolution_seconds", map[string]string{"provider": "fake", "outcome": "cached"}); got != 3 {
		t.Errorf("cached observations = %d, want 3", got)
	}
	if got := histogramCount(t, reg, "binderbuild_ref_resolution_seconds", map[string]string{"provider": "fake", "outcome": "ok"}); got != 3 {
		t.Errorf("ok observations = %d, want 3", got)
	}
}

func TestCachedOutcomes(t *testing.T) {
	const sha = "2222222222222222222222222222222222222222"
	tests := []struct {
		name      string
		spec      string
		err       error
		advance   time.Duration // between the two calls
		wantCalls int32
		outcome   string
	}{
		{name: "full sha never expires", spec: "repo/" + sha, advance: 1000 * time.Hour, wantCalls: 1, outcome: "ok"},
		{name: "sha prefix is a moving ref", spec: "repo/" + sha + "x", advance: time.Minute, wantCalls: 2, outcome: "ok"},
		{name: "upper-case sha is a moving ref", spec: "repo/" + "ABCDEF0123456789ABCDEF0123456789ABCDEF01", advance: time.Minute, wantCalls: 2, outcome: "ok"},
		{name: "not found cached", spec: "repo/gone", err: fmt.Errorf("x: %w", binderbuild.ErrRefNotFound), advance: 59 * time.Second, wantCalls: 1, outcome: "not_found"},
		{name: "not found expires", spec: "repo/gone", err: binderbuild.ErrRefNotFound, advance: 60 * time.Second, wantCalls: 2, outcome: "not_found"},
		{name: "missing sha not pinned", spec: "repo/" + sha, err: binderbuild.ErrRefNotFound, advance: 60 * time.Second, wantCalls: 2, outcome: "not_found"},
		{name: "errors not cached", spec: "repo/main", err: errors.New("upstream unavailable"), wantCalls: 2, outcome: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeProvider{}
			fake.ResolveFn = func(_ context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
				if tc.err != nil {
					return binderbuild.Resolved{}, tc.err
				}
				return resolvedAs(repo, sha), nil
			}
			m, reg := newTestMetrics(t)
			c, now := newTestCache(fake, m)
			for i := range 2 {
				got, err := resolveSpec(t, c, tc.spec)
				if !errors.Is(err, tc.err) || err != nil && err.Error() != tc.err.Error() {
					t.Errorf("call %d: error = %v, want %v", i, err, tc.err)
				}
				if tc.err == nil && got.ResolvedRef != sha {
					t.Errorf("call %d: ResolvedRef = %q, want %q", i, got.ResolvedRef, sha)
				}
				*now = now.Add(tc.advance)
			}
			if calls := fake.calls.Load(); calls != tc.wantCalls {
				t.Errorf("upstream calls = %d, want %d", calls, tc.wantCalls)
			}
			labels := map[string]string{"provider": "fake", "outcome": tc.outcome}
			if got := histogramCount(t, reg, "binderbuild_ref_resolution_seconds", labels); got != uint64(tc.wantCalls) {
				t.Errorf("%s observations = %d, want %d", tc.outcome, got, tc.wantCalls)
			}
		})
	}
}

func TestCachedSizeBound(t *testing.T) {
	fake := &fakeProvider{ResolveFn: resolveTo("3333333333333333333333333333333333333333")}
	c := Cached(fake, time.Hour, 2, nil)
	for _, spec := range []string{"repo/a", "repo/b", "repo/c", "repo/a"} {
		if _, err := resolveSpec(t, c, spec); err != nil {
			t.Fatal(err)
		}
	}
	if calls := fake.calls.Load(); calls != 4 {
		t.Errorf("upstream calls = %d, want 4 (repo/a evicted by repo/c)", calls)
	}
}

func TestCachedCoalesces(t *testing.T) {
	const n = 20
	started := make(chan struct{})
	release := make(chan struct{})
	fake := &fakeProvider{}
	fake.ResolveFn = func(_ context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
		close(started) // a second upstream call would panic here
		<-release
		return resolvedAs(repo, "4444444444444444444444444444444444444444"), nil
	}
	c := Cached(fake, 0, 0, nil)
	repo, _ := c.Parse("repo/main")

	var wg sync.WaitGroup
	results := make(chan string, n)
	for range n {
		wg.Go(func() {
			got, err := c.Resolve(t.Context(), repo)
			if err != nil {
				t.Errorf("Resolve error = %v", err)
			}
			results <- got.ResolvedRef
		})
	}
	<-started
	close(release)
	wg.Wait()
	close(results)
	for got := range results {
		if got != "4444444444444444444444444444444444444444" {
			t.Errorf("Resolve = %q, want 4444…", got)
		}
	}
	if calls := fake.calls.Load(); calls != 1 {
		t.Errorf("upstream calls for %d concurrent callers = %d, want 1", n, calls)
	}
}

func TestCachedFirstCallerCancels(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	upstreamErr := make(chan error, 1)
	fake := &fakeProvider{}
	fake.ResolveFn = func(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
		close(started)
		<-release
		upstreamErr <- ctx.Err()
		return resolvedAs(repo, "5555555555555555555555555555555555555555"), nil
	}
	c := Cached(fake, 0, 0, nil)
	repo, _ := c.Parse("repo/main")

	firstCtx, cancelFirst := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := c.Resolve(firstCtx, repo)
		first <- err
	}()
	<-started
	second := make(chan binderbuild.Resolved, 1)
	go func() {
		got, err := c.Resolve(t.Context(), repo)
		if err != nil {
			t.Errorf("second caller: error = %v", err)
		}
		second <- got
	}()
	for c.group.Waiters(cacheKey{"fake", "repo/main"}) < 2 { // the second caller joined
		time.Sleep(time.Millisecond)
	}

	cancelFirst()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first caller: error = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-upstreamErr; err != nil {
		t.Errorf("upstream context error = %v, want nil (not cancelled by the first caller)", err)
	}
	if got := <-second; got.ResolvedRef != "5555555555555555555555555555555555555555" {
		t.Errorf("second caller: ResolvedRef = %q, want 5555…", got.ResolvedRef)
	}
	if _, ok := c.lookup(cacheKey{"fake", "repo/main"}); !ok {
		t.Error("result not cached after the first caller left")
	}
	if calls := fake.calls.Load(); calls != 1 {
		t.Errorf("upstream calls = %d, want 1", calls)
	}
}

func BenchmarkCachedResolveHit(b *testing.B) {
	m := NewMetrics(nil)
	c := Cached(&fakeProvider{ResolveFn: resolveTo("6666666666666666666666666666666666666666")}, 0, 0, m)
	repo, _ := c.Parse("repo/main")
	ctx := context.Background()
	if _, err := c.Resolve(ctx, repo); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Resolve(ctx, repo); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCachedCancelsAbandonedLookup: once every caller has left, the shared
// lookup is cancelled and nothing is cached.
func TestCachedCancelsAbandonedLookup(t *testing.T) {
	started := make(chan struct{})
	upstreamErr := make(chan error, 1)
	fake := &fakeProvider{}
	fake.ResolveFn = func(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
		close(started)
		<-ctx.Done()
		upstreamErr <- ctx.Err()
		return binderbuild.Resolved{}, ctx.Err()
	}
	c := Cached(fake, 0, 0, nil)
	repo, _ := c.Parse("repo/main")
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan error, 1)
	go func() {
		_, err := c.Resolve(ctx, repo)
		got <- err
	}()
	<-started
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("caller: error = %v, want context.Canceled", err)
	}
	if err := <-upstreamErr; !errors.Is(err, context.Canceled) {
		t.Errorf("upstream context error = %v, want context.Canceled once nobody waits", err)
	}
	if _, ok := c.lookup(cacheKey{"fake", "repo/main"}); ok {
		t.Error("an abandoned lookup was cached")
	}
}

// TestLimitedLookups: lookups beyond the limit fail with a clear message;
// cache hits and coalesced callers take no slot.
func TestLimitedLookups(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	fake := &fakeProvider{}
	fake.ResolveFn = func(_ context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
		started <- struct{}{}
		<-release
		return resolvedAs(repo, "7777777777777777777777777777777777777777"), nil
	}
	lim := NewLimiter(LimitConfig{MaxConcurrentLookups: 1, LookupQueueTimeout: time.Nanosecond})
	c := Cached(Limited(fake, lim), 0, 0, nil)

	var wg sync.WaitGroup
	for range 3 { // one lookup, shared by three callers
		wg.Go(func() {
			if _, err := resolveSpec(t, c, "repo/main"); err != nil {
				t.Errorf("Resolve(repo/main) error = %v", err)
			}
		})
	}
	<-started
	_, err := resolveSpec(t, c, "repo/other")
	if want := "too many repository lookups are in progress, please try again in a minute"; err == nil || err.Error() != want {
		t.Errorf("Resolve(repo/other) beyond the limit: error = %v, want %q", err, want)
	}
	close(release)
	wg.Wait()
	if _, err := resolveSpec(t, c, "repo/other"); err != nil {
		t.Errorf("Resolve(repo/other) once the slot is free: error = %v", err)
	}
	if _, err := resolveSpec(t, c, "repo/main"); err != nil { // cached
		t.Errorf("Resolve(repo/main) from the cache: error = %v", err)
	}
	if n := fake.calls.Load(); n != 2 {
		t.Errorf("upstream calls = %d, want 2", n)
	}
}

func TestLimitedForwards(t *testing.T) {
	p := Limited(&fakeProvider{ResolveFn: resolveTo("8888888888888888888888888888888888888888")}, nil)
	if p.Prefix() != "fake" || p.Display() != "fake display" {
		t.Errorf("Prefix, Display = %q, %v; want the wrapped provider's", p.Prefix(), p.Display())
	}
	repo, err := p.Parse("repo/main")
	if err != nil || repo.Ref != "main" {
		t.Errorf("Parse = %+v, %v; want the wrapped provider's", repo, err)
	}
	if got, err := p.Resolve(t.Context(), repo); err != nil || got.ResolvedRef != "8888888888888888888888888888888888888888" {
		t.Errorf("Resolve without a limiter = %q, %v; want the wrapped provider's", got.ResolvedRef, err)
	}
}
