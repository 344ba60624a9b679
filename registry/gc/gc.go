// Package gc keeps the image registry within budget: it lists every image
// the service pushed under its image prefix (repositories of the prefix's
// registry whose name starts with the prefix, every tag, with digest,
// creation time from the image config and compressed size), applies
// retention policies (maximum age, newest N per repository, a total-size
// cap, name patterns, purge) and protections (minimum age, images of
// running pods), and deletes the chosen manifests by digest through the
// registry API with bounded parallelism and retries.
//
// A collection is a dry run unless Settings.Delete is set. Deleting a
// manifest only unlinks it: space comes back when the registry runs its own
// garbage collection (README.md says what each registry needs).
//
// Collector.Run is the whole collection; `binderbuild gc` and the
// in-service Scheduler both call it with Settings from SettingsFromEnv.
package gc

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

	"github.com/binderbuild/binderbuild/internal/wait"
	"github.com/binderbuild/binderbuild/registry"
)

// Defaults for the zero values of Config.
const (
	DefaultAttempts = 4
	DefaultBackoff  = 500 * time.Millisecond
)

// ErrNoPods means Settings.ProtectRunning was set but the Collector has no
// PodImages to ask (Config.Pods is nil).
var ErrNoPods = errors.New("protect-running needs access to the Kubernetes API (no pod lister configured)")

// PodImages tells which images pods use right now. Entries are image
// references as pods write them ("registry/repo:tag", "registry/repo@sha256:…",
// Docker Hub short names allowed).
type PodImages interface {
	RunningImages(ctx context.Context) (map[string]bool, error)
}

// Config holds the dependencies of a Collector. The zero value of every
// field selects its default.
type Config struct {
	// Keychain supplies registry credentials. Default authn.DefaultKeychain
	// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), the file the
	// service and its build pods use. Deleting needs delete permission.
	Keychain authn.Keychain
	// Transport carries every registry request. Default a clone of
	// remote.DefaultTransport.
	Transport http.RoundTripper
	// Pods answers which images running pods use; needed only for
	// Settings.ProtectRunning. Default none.
	Pods PodImages
	// Metrics records every Run; nil records nothing.
	Metrics *Metrics
	// Log receives progress and retry warnings. Default: discarded.
	Log *slog.Logger
	// Attempts is the number of tries of one registry request that fails
	// transiently (network error, 408, 429, 5xx). Default 4.
	Attempts int
	// Backoff is the wait before the second try; it doubles for each
	// further try. Default 500ms.
	Backoff time.Duration
	// Now is the clock that ages are measured with. Default time.Now.
	Now func() time.Time
}

// Collector lists, plans and deletes. It is safe for concurrent use; each
// Run is independent. Create it with New.
type Collector struct {
	// keychain and transport are handed to every registry request.
	keychain  authn.Keychain
	transport http.RoundTripper
	// pods answers ProtectRunning.
	pods    PodImages
	metrics *Metrics
	log     *slog.Logger
	// attempts and backoff bound the retries of one request.
	attempts int
	backoff  time.Duration
	now      func() time.Time
}

// New returns a Collector for cfg. It makes no request.
func New(cfg Config) (*Collector, error) {
	if cfg.Attempts < 0 || cfg.Backoff < 0 {
		return nil, errors.New("gc config: negative Attempts or Backoff")
	}
	c := &Collector{
		keychain:  cfg.Keychain,
		transport: cfg.Transport,
		pods:      cfg.Pods,
		metrics:   cfg.Metrics,
		log:       cfg.Log,
		attempts:  cmp.Or(cfg.Attempts, DefaultAttempts),
		backoff:   cmp.Or(cfg.Backoff, DefaultBackoff),
		now:       cfg.Now,
	}
	if c.keychain == nil {
		c.keychain = authn.DefaultKeychain
	}
	if c.transport == nil {
		t, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("gc config: remote.DefaultTransport is a %T, not an *http.Transport", remote.DefaultTransport)
		}
		c.transport = t.Clone()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// DeleteError is returned with the report when some deletions failed; the
// report's results say which and why.
type DeleteError struct {
	// Failed is the number of images not deleted; Attempted the number of
	// images the run tried to delete.
	Failed, Attempted int
}

// Error says how many deletions failed.
func (e *DeleteError) Error() string {
	return fmt.Sprintf("%d of %d deletions failed; run again to retry them", e.Failed, e.Attempted)
}

// Run is a whole collection: validate s, list the registry, ask Config.Pods
// when s.ProtectRunning, plan, and delete when s.Delete (a dry run
// otherwise). The report is complete even when deletions failed; the error
// is then a *DeleteError. A listing failure returns an empty report and the
// error; nothing is deleted then.
func (c *Collector) Run(ctx context.Context, s Settings) (Report, error) {
	start := c.now()
	rep, err := c.run(ctx, s)
	c.metrics.observeRun(rep, err, start)
	return rep, err
}

func (c *Collector) run(ctx context.Context, s Settings) (Report, error) {
	if err := s.Validate(); err != nil {
		return Report{}, err
	}
	inv, err := c.List(ctx, s)
	if err != nil {
		return Report{}, err
	}
	var running map[string]bool
	if s.ProtectRunning {
		if c.pods == nil {
			return Report{}, ErrNoPods
		}
		if running, err = c.pods.RunningImages(ctx); err != nil {
			return Report{}, fmt.Errorf("list images of running pods: %w", err)
		}
	}
	plan, err := NewPlan(inv, s, running, c.now())
	if err != nil {
		return Report{}, err
	}
	rep := c.Execute(ctx, plan, s)
	if rep.Failed > 0 {
		return rep, &DeleteError{Failed: rep.Failed, Attempted: len(rep.Results)}
	}
	return rep, nil
}

// target is a parsed image prefix.
type target struct {
	// prefix is the normalised image prefix.
	prefix string
	// registry is the prefix's registry, insecure when listed.
	registry name.Registry
	// path is the repository path prefix inside the registry, e.g.
	// "binder/r2d-" for "registry.example.com/binder/r2d-".
	path string
}

// parsePrefix normalises prefix as image names are (lower case, "_" → "-")
// and splits it into registry and repository path prefix.
func parsePrefix(prefix string, insecureHosts []string) (target, error) {
	p := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(prefix), "_", "-"))
	if p == "" {
		return target{}, &SettingError{Name: EnvImagePrefix, Value: prefix, Err: errors.New("empty: gc needs the registry and prefix the service pushes to, e.g. registry.example.com/binder/r2d-")}
	}
	// A prefix may end mid-name ("…/r2d-") or with "/": complete it with a
	// character to parse it as a repository.
	repo, err := name.NewRepository(p + "x")
	if err != nil {
		return target{}, &SettingError{Name: EnvImagePrefix, Value: prefix, Err: err}
	}
	for _, h := range insecureHosts {
		if strings.EqualFold(strings.TrimSpace(h), repo.RegistryStr()) {
			if repo, err = name.NewRepository(p+"x", name.Insecure); err != nil {
				return target{}, &SettingError{Name: EnvImagePrefix, Value: prefix, Err: err}
			}
			break
		}
	}
	return target{
		prefix:   p,
		registry: repo.Registry,
		path:     strings.TrimSuffix(repo.RepositoryStr(), "x"),
	}, nil
}

// options are the remote options of every request of one run.
func (c *Collector) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		remote.WithUserAgent("binderbuild-gc"),
		// Retries are ours (retry): switch off remote's own.
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
	}
}

// retry calls f until it succeeds, fails permanently, or c.attempts tries
// failed transiently; it returns the number of tries.
func (c *Collector) retry(ctx context.Context, what string, f func() error) (int, error) {
	return wait.Retry{Attempts: c.attempts, Delay: c.backoff, Retryable: transient, OnRetry: func(attempt int, err error) {
		c.log.WarnContext(ctx, "registry request failed; retrying", "request", what, "attempt", attempt, "attempts", c.attempts, "error", err)
	}}.Do(ctx, f)
}

// transient reports whether a failed request is worth retrying (see
// registry.Transient); never when it was cancelled or is permanent.
func transient(err error) bool {
	var perm *permanentError
	if errors.As(err, &perm) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return registry.Transient(err)
}

// isNotFound reports whether err is an HTTP 404 from the registry.
func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}
