package repoproviders

import (
	"context"
	"errors"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/flight"
	"github.com/binderbuild/binderbuild/internal/ttl"
)

const (
	// DefaultCacheTTL is how long Cached keeps results of moving refs
	// (branches, tags, HEAD) and not-found outcomes by default.
	DefaultCacheTTL = 60 * time.Second
	// DefaultCacheSize is the default entry limit of each of Cached's two
	// caches.
	DefaultCacheSize = 10000
	// sharedResolveTimeout bounds a shared (coalesced) resolution, which no
	// single caller's deadline may end while others wait.
	sharedResolveTimeout = 2 * time.Minute
)

// CachedProvider is a Provider whose Resolve results are cached and whose
// concurrent identical resolutions are coalesced. Build it with Cached. It is
// safe for concurrent use.
type CachedProvider struct {
	next    Provider
	ttl     time.Duration
	metrics *Metrics
	hits    prometheus.Observer // resolutions answered from the cache
	now     func() time.Time    // replaced in tests
	// recent holds results of refs that can move (branches, tags, HEAD) and
	// not-found outcomes, each for ttl.
	recent *ttl.Cache[cacheKey, cacheEntry]
	// pinned holds successful resolutions of full 40-hex shas, which cannot
	// change, without expiry.
	pinned *lru.Cache[cacheKey, binderbuild.Resolved]
	group  flight.Group[cacheKey, binderbuild.Resolved]
	// parsed holds the repositories of specs that parsed: parsing depends
	// on the spec and the configuration only.
	parsed *lru.Cache[string, binderbuild.Repo]
}

var _ Provider = (*CachedProvider)(nil)

// Pinner is an optional upgrade of Provider for providers whose specs may
// name an immutable version (a DOI of one record version, a SWHID): Cached
// keeps results for which Pinned is true without expiry.
type Pinner interface {
	// Pinned reports whether res, a successful resolution, can never
	// change for its spec.
	Pinned(res binderbuild.Resolved) bool
}

type cacheKey struct {
	provider, spec string
}

type cacheEntry struct {
	res binderbuild.Resolved
	err error // nil or a binderbuild.ErrRefNotFound
}

// Cached wraps next with a cache of its Resolve results keyed by (provider
// prefix, spec):
//   - a ref that is not a full 40-hex sha is cached for age (default 60s,
//     DefaultCacheTTL), whether it resolved or was not found;
//   - a full-sha ref that resolved, and a result next (a Pinner) says is
//     pinned, are cached without expiry;
//   - other errors are never cached.
//
// Each of the two caches keeps at most size entries (default 10000,
// DefaultCacheSize), evicting the oldest. Concurrent calls for
// the same key share one call of next.Resolve; that call runs on a context
// bounded by two minutes that one caller's cancellation does not end, but
// that is cancelled once every caller has left, so abandoned lookups stop.
// Wrap next with Limited inside Cached so that a shared call counts once. m
// (may be nil) gets every call in binderbuild_ref_resolution_seconds, hits
// with outcome "cached".
func Cached(next Provider, age time.Duration, size int, m *Metrics) *CachedProvider {
	if age <= 0 {
		age = DefaultCacheTTL
	}
	if size <= 0 {
		size = DefaultCacheSize
	}
	c := &CachedProvider{next: next, ttl: age, metrics: m, hits: m.resolutions(next.Prefix(), outcomeCached), now: time.Now}
	c.recent = ttl.New[cacheKey, cacheEntry](size, func() time.Time { return c.now() })
	c.pinned, _ = lru.New[cacheKey, binderbuild.Resolved](size)
	c.parsed, _ = lru.New[string, binderbuild.Repo](min(size, maxParsed))
	return c
}

// Prefix returns the wrapped provider's prefix.
func (c *CachedProvider) Prefix() string { return c.next.Prefix() }

// Parse calls the wrapped provider's Parse once per spec that parses:
// a warm request skips parsing. Specs that do not parse, or are long, are
// parsed again each time, so that they cannot fill the cache.
func (c *CachedProvider) Parse(spec string) (binderbuild.Repo, error) {
	if repo, ok := c.parsed.Peek(spec); ok {
		return repo, nil
	}
	repo, err := c.next.Parse(spec)
	if err == nil && len(spec) <= maxParsedSpec {
		c.parsed.Add(spec, repo)
	}
	return repo, err
}

// maxParsedSpec and maxParsed bound what hostile specs can make the parse
// cache hold: about 1 KB for each of at most 4096 specs. Longer specs,
// which real repositories seldom have, are parsed each time.
const (
	maxParsedSpec = 256
	maxParsed     = 4096
)

// Display returns the wrapped provider's Display.
func (c *CachedProvider) Display() any { return c.next.Display() }

// Resolve returns a cached result, or waits for the (possibly shared) call of
// the wrapped Resolve. When ctx ends first it returns ctx.Err(); the shared
// call goes on only while other callers wait for it. The returned Resolved
// carries repo as its Repo.
func (c *CachedProvider) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	start := c.now()
	key := cacheKey{provider: repo.Provider, spec: repo.Spec}
	if e, ok := c.lookup(key); ok {
		c.hits.Observe(c.now().Sub(start).Seconds())
		return rebase(e.res, repo), e.err
	}
	return c.resolveShared(ctx, key, repo, start)
}

// resolveShared resolves a repository missing from the cache, once for all
// the callers asking at the same time. It is apart from Resolve so that a
// cache hit's stack frame stays small.
func (c *CachedProvider) resolveShared(ctx context.Context, key cacheKey, repo binderbuild.Repo, start time.Time) (binderbuild.Resolved, error) {
	res, err := c.group.Do(ctx, key, func(ctx context.Context) (binderbuild.Resolved, error) {
		if e, ok := c.lookup(key); ok {
			return e.res, e.err // filled while this caller was on its way
		}
		ctx, cancel := context.WithTimeout(ctx, sharedResolveTimeout)
		defer cancel()
		res, err := c.next.Resolve(ctx, repo)
		c.store(key, repo.Ref, res, err)
		return res, err
	})
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return binderbuild.Resolved{}, err
	}
	c.metrics.observeResolution(repo.Provider, resolutionOutcome(err), c.now().Sub(start))
	return rebase(res, repo), err
}

// lookup returns the unexpired entry for key.
// lookup peeks: a hit takes only a read lock, which warm requests share,
// where marking the entry used would serialise them all on one lock. So
// each cache drops its oldest entry first, not its least used one.
func (c *CachedProvider) lookup(key cacheKey) (cacheEntry, bool) {
	if res, ok := c.pinned.Peek(key); ok {
		return cacheEntry{res: res}, true
	}
	return c.recent.Peek(key)
}

func (c *CachedProvider) store(key cacheKey, ref string, res binderbuild.Resolved, err error) {
	pinner, _ := c.next.(Pinner)
	switch {
	case err == nil && (isFullSHA(ref) || pinner != nil && pinner.Pinned(res)):
		c.pinned.Add(key, res)
	case err == nil || errors.Is(err, binderbuild.ErrRefNotFound):
		c.recent.Add(key, cacheEntry{res: res, err: err}, c.ttl)
	}
}

// rebase gives a result the caller's repo, keeping the repository URL and
// build slug that resolution decided (archives name the version in the
// slug; swh hands repo2docker the resolved SWHID).
func rebase(res binderbuild.Resolved, repo binderbuild.Repo) binderbuild.Resolved {
	url, slug := res.URL, res.BuildSlug
	res.Repo = repo
	res.URL, res.BuildSlug = orDefault(url, repo.URL), orDefault(slug, repo.BuildSlug)
	return res
}

func resolutionOutcome(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, binderbuild.ErrRefNotFound):
		return outcomeNotFound
	}
	return outcomeError
}
