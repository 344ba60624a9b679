// Package registry answers whether an image has already been built and
// pushed, by asking the image registry with go-containerregistry
// (spec build-api.md §13), and probes the registry for /health.
//
// Positive answers are cached for Config.PositiveTTL (tags are resolved
// commit shas and do not move, but images get deleted: by binderbuild gc,
// which tells the cache through Forget, or by hand), negative answers for a
// short TTL, errors never. Concurrent checks of one image share one registry request.
package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/singleflight"

	"github.com/binderbuild/binderbuild/internal/ttl"
	"github.com/binderbuild/binderbuild/internal/wait"
)

// ErrUnauthorized means the registry refused the checker's credentials
// (HTTP 401 or 403). It is a configuration error, not an absent image:
// check the docker config the checker and the build pods share. Errors
// wrapping it also wrap the registry's *transport.Error.
var ErrUnauthorized = errors.New("registry refused credentials (401/403)")

// Defaults for the zero values of Config.
const (
	// DefaultNegativeTTL is the default Config.NegativeTTL.
	DefaultNegativeTTL = 5 * time.Second
	// DefaultPositiveTTL is the default Config.PositiveTTL.
	DefaultPositiveTTL = 10 * time.Minute
	// DefaultAttempts is the default Config.Attempts.
	DefaultAttempts = 3
	// DefaultBackoff is the default Config.Backoff.
	DefaultBackoff = 100 * time.Millisecond
	// DefaultTimeout is the default Config.Timeout.
	DefaultTimeout = 30 * time.Second
	// DefaultCacheSize is the default Config.CacheSize.
	DefaultCacheSize = 10000
)

// healthProbe is the image name, after the image prefix, that Check asks for
// (BinderHub's "some-image-name:12345").
const healthProbe = "some-image-name:12345"

// Config configures a Checker. The zero value of every field selects its
// default.
type Config struct {
	// ImagePrefix is the image_prefix images are named with (see
	// binderbuild.ImageName). Check probes ImagePrefix+"some-image-name:12345",
	// lower-cased with "_" replaced by "-" as image names are.
	ImagePrefix string `split_words:"true" desc:"image name prefix, registry host included (e.g. registry.example.com/binder/r2d-)"`
	// InsecureHosts lists registry hosts (host[:port], as in the image name)
	// reached over plain HTTP through name.Insecure. localhost, loopback and
	// RFC 1918 hosts use HTTP without being listed. Default none.
	InsecureHosts []string `split_words:"true" desc:"comma-separated registry hosts reached over plain HTTP (e.g. 127.0.0.1:5000)"`
	// NegativeTTL is how long an "image absent" answer is cached, so that a
	// burst of requests for a missing image sends one check. Default 5s.
	NegativeTTL time.Duration `split_words:"true" default:"5s" desc:"how long an absent image is cached"`
	// PositiveTTL is how long an "image present" answer is cached: an
	// image deleted from the registry behind the service's back is answered
	// as built for at most that long. Default 10m.
	PositiveTTL time.Duration `split_words:"true" default:"10m" desc:"how long a present image is cached; an image deleted behind the service's back is reported as built for at most that long"`
	// Attempts is the number of tries for a transient failure (5xx, 408,
	// 429, network error) before Exists gives up. Default 3.
	Attempts int `default:"3" desc:"tries per check on transient registry errors"`
	// Backoff is the wait before the second attempt; it doubles for each
	// further attempt. Default 100ms.
	Backoff time.Duration `default:"100ms" desc:"wait before retrying a check; doubles per attempt"`
	// Timeout bounds one shared check, all attempts included. A shared check
	// runs detached from its callers' contexts (a caller leaving does not
	// cancel the others), so this is its only deadline. Default 30s.
	Timeout time.Duration `default:"30s" desc:"deadline of one registry check, retries included"`
	// CacheSize is the number of images remembered as present, and
	// separately as absent. Least recently used entries are dropped first.
	// Default 10000.
	CacheSize int `split_words:"true" default:"10000" desc:"images remembered as present (and as absent)"`
	// Keychain supplies registry credentials. Default authn.DefaultKeychain,
	// which reads $DOCKER_CONFIG/config.json, else ~/.docker/config.json, on
	// every uncached check: the same file the build pods push with.
	Keychain authn.Keychain `ignored:"true"`
	// Transport carries all registry requests; one is shared by every check
	// so connections are pooled. Default a clone of remote.DefaultTransport.
	Transport http.RoundTripper `ignored:"true"`
}

// Checker answers whether images exist in the registry. It is safe for
// concurrent use. Create it with NewChecker.
type Checker struct {
	// insecure holds the lower-cased registry hosts parsed with name.Insecure.
	insecure map[string]bool
	// keychain and transport are handed to every remote.Head.
	keychain  authn.Keychain
	transport http.RoundTripper
	// attempts, backoff and timeout bound one shared check.
	attempts int
	backoff  time.Duration
	timeout  time.Duration
	// negativeTTL and positiveTTL are how long entries of missing and
	// found stay valid.
	negativeTTL time.Duration
	positiveTTL time.Duration
	// probe is the image name Check asks for.
	probe string

	// found holds images known to exist, for positiveTTL.
	found *ttl.Cache[string, struct{}]
	// missing holds images known to be absent, for negativeTTL.
	missing *ttl.Cache[string, struct{}]
	// flights coalesces concurrent checks of one image.
	flights singleflight.Group

	metrics *Metrics
	log     *slog.Logger

	// now is the clock of the caches (time.Now; tests replace it).
	now func() time.Time
	// joined, when set by tests, is called once a cache-missing caller has
	// joined (or started) the shared check for its image.
	joined func()
}

// NewChecker returns a Checker for cfg. m may be nil (no metrics); log may
// be nil (no logs). It makes no request.
func NewChecker(cfg Config, m *Metrics, log *slog.Logger) (*Checker, error) {
	if cfg.NegativeTTL < 0 || cfg.PositiveTTL < 0 || cfg.Attempts < 0 || cfg.Backoff < 0 || cfg.Timeout < 0 || cfg.CacheSize < 0 {
		return nil, fmt.Errorf("registry config: negative NegativeTTL, PositiveTTL, Attempts, Backoff, Timeout or CacheSize")
	}
	c := &Checker{
		insecure:    make(map[string]bool),
		keychain:    cfg.Keychain,
		transport:   cfg.Transport,
		attempts:    cmp.Or(cfg.Attempts, DefaultAttempts),
		backoff:     cmp.Or(cfg.Backoff, DefaultBackoff),
		timeout:     cmp.Or(cfg.Timeout, DefaultTimeout),
		negativeTTL: cmp.Or(cfg.NegativeTTL, DefaultNegativeTTL),
		positiveTTL: cmp.Or(cfg.PositiveTTL, DefaultPositiveTTL),
		probe:       strings.ToLower(strings.ReplaceAll(cfg.ImagePrefix, "_", "-")) + healthProbe,
		metrics:     m,
		log:         log,
		now:         time.Now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.keychain == nil {
		c.keychain = authn.DefaultKeychain
	}
	if c.transport == nil {
		t, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("registry config: remote.DefaultTransport is a %T, not an *http.Transport", remote.DefaultTransport)
		}
		c.transport = t.Clone()
	}
	for _, h := range cfg.InsecureHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			c.insecure[h] = true
		}
	}
	size := cmp.Or(cfg.CacheSize, DefaultCacheSize)
	clock := func() time.Time { return c.now() }
	c.found = ttl.New[string, struct{}](size, clock)
	c.missing = ttl.New[string, struct{}](size, clock)
	if _, err := c.parse(c.probe); err != nil {
		return nil, fmt.Errorf("registry config: image prefix %q: health probe %q: %w", cfg.ImagePrefix, c.probe, err)
	}
	return c, nil
}

// Exists reports whether image (a full image name with tag, from
// binderbuild.ImageName) is in the registry.
//
// A missing tag or repository (HTTP 404) is (false, nil). Credentials the
// registry refuses give an error wrapping ErrUnauthorized. Transient
// failures are retried Config.Attempts times; then the error names the image
// and registry host. Errors are never cached.
//
// Concurrent calls for one image share one check, which runs on a context
// detached from the callers (bounded by Config.Timeout): a caller whose ctx
// ends returns ctx's error at once while the check goes on for the others
// and still fills the cache.
func (c *Checker) Exists(ctx context.Context, image string) (bool, error) {
	start := time.Now()
	if found, ok := c.cached(image); ok {
		c.metrics.observeCheck(checkCached, time.Since(start).Seconds())
		return found, nil
	}
	if err := context.Cause(ctx); err != nil {
		c.metrics.observeCheck(checkError, time.Since(start).Seconds())
		return false, fmt.Errorf("check image %s: %w", image, err)
	}
	ch := c.flights.DoChan(image, func() (any, error) {
		return c.shared(ctx, image)
	})
	if c.joined != nil {
		c.joined()
	}
	select {
	case res := <-ch:
		found, _ := res.Val.(bool)
		outcome := checkNotFound
		switch {
		case res.Err != nil:
			outcome = checkError
		case found:
			outcome = checkFound
		}
		c.metrics.observeCheck(outcome, time.Since(start).Seconds())
		return found, res.Err
	case <-ctx.Done():
		c.metrics.observeCheck(checkError, time.Since(start).Seconds())
		return false, fmt.Errorf("check image %s: %w", image, context.Cause(ctx))
	}
}

// cached returns the cached answer for image, if any.
func (c *Checker) cached(image string) (found, ok bool) {
	if _, ok := c.found.Peek(image); ok { // a read lock, shared by warm requests
		return true, true
	}
	_, ok = c.missing.Peek(image)
	return false, ok
}

// Forget drops every cached answer, after binderbuild gc deleted images:
// the next request for each image checks the registry again. (gc names
// images as the registry lists them, which need not be the spelling the
// service checks, so the whole cache goes.)
func (c *Checker) Forget() {
	c.found.Purge()
	c.missing.Purge()
}

// shared is the check that concurrent callers for image share. It runs
// detached from ctx's cancellation (keeping its values) and fills the cache.
func (c *Checker) shared(ctx context.Context, image string) (bool, error) {
	// A check that finished between the caller's cache miss and its joining
	// the group has filled the cache already.
	if found, ok := c.cached(image); ok {
		return found, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	found, err := c.check(ctx, image, c.attempts)
	switch {
	case err != nil:
	case found:
		c.found.Add(image, struct{}{}, c.positiveTTL)
		c.missing.Remove(image)
	default:
		c.missing.Add(image, struct{}{}, c.negativeTTL)
	}
	return found, err
}

// Check probes the registry for /health by asking for the image
// "<ImagePrefix>some-image-name:12345", bypassing the cache, with a single
// attempt bounded by Config.Timeout (the health handler retries). The
// registry is healthy (nil) when it answers found or not found; refused
// credentials (wrapping ErrUnauthorized), an unreachable registry or any
// other error is unhealthy.
func (c *Checker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.check(ctx, c.probe, 1); err != nil {
		return fmt.Errorf("registry health: %w", err)
	}
	return nil
}

// check asks the registry for image up to attempts times.
func (c *Checker) check(ctx context.Context, image string, attempts int) (bool, error) {
	ref, err := c.parse(image)
	if err != nil {
		return false, fmt.Errorf("check image %s: %w", image, err)
	}
	host := ref.Context().RegistryStr()
	var found bool
	retry := wait.Retry{Attempts: attempts, Delay: c.backoff, Retryable: Transient, OnRetry: func(attempt int, err error) {
		c.log.WarnContext(ctx, "registry check failed", "image", image, "registry", host, "attempt", attempt, "attempts", attempts, "error", err)
	}}
	_, err = retry.Do(ctx, func() error {
		_, err := remote.Head(ref,
			remote.WithContext(ctx),
			remote.WithAuthFromKeychain(c.keychain),
			remote.WithTransport(c.transport),
			// Retries are ours: switch off remote's (1s, 3s on 5xx).
			remote.WithRetryPredicate(func(error) bool { return false }),
			remote.WithRetryStatusCodes(),
		)
		outcome := classify(err)
		c.metrics.countRequest(outcome)
		switch outcome {
		case requestOK:
			found = true
			return nil
		case requestNotFound:
			return nil
		case requestUnauthorized:
			c.log.ErrorContext(ctx, "registry refused credentials", "image", image, "registry", host, "error", err)
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return err
	})
	switch {
	case err == nil:
		return found, nil
	case ctx.Err() != nil || errors.Is(err, ErrUnauthorized) || !Transient(err):
		return false, fmt.Errorf("check image %s: registry %s: %w", image, host, err)
	case attempts == 1:
		return false, fmt.Errorf("check image %s: registry %s unreachable: %w", image, host, err)
	}
	return false, fmt.Errorf("check image %s: registry %s unreachable after %d attempts: %w", image, host, attempts, err)
}

// parse parses image, as an insecure (plain HTTP) reference when its
// registry host is in Config.InsecureHosts.
func (c *Checker) parse(image string) (name.Reference, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, fmt.Errorf("parse image name: %w", err)
	}
	if c.insecure[strings.ToLower(ref.Context().RegistryStr())] {
		if ref, err = name.ParseReference(image, name.Insecure); err != nil {
			return nil, fmt.Errorf("parse image name: %w", err)
		}
	}
	return ref, nil
}

// classify maps the result of remote.Head to a request outcome. Only a 404
// answering the manifest request means "absent": a 404 from the /v2/ ping
// (no registry at that address) is an error.
func classify(err error) requestOutcome {
	if err == nil {
		return requestOK
	}
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return requestError
	}
	switch terr.StatusCode {
	case http.StatusNotFound:
		if terr.Request == nil || strings.Contains(terr.Request.URL.Path, "/manifests/") {
			return requestNotFound
		}
	case http.StatusUnauthorized, http.StatusForbidden:
		return requestUnauthorized
	}
	return requestError
}

// Transient reports whether a failed registry request is worth retrying:
// network errors, and HTTP errors go-containerregistry calls temporary
// (408, 429, 500, 502, 503, 504, unless the registry's error codes say
// otherwise). Others (400, 405, a 404 from the ping) will not change on
// retry.
func Transient(err error) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return true
	}
	return terr.Temporary()
}
