// Package server is binderbuild's HTTP front: the BinderHub-compatible
// /build event stream, health, versions and provider listings. It declares
// the small interfaces it consumes; cmd wires the concrete types in.
package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// Config holds the server's settings. The tags document the environment
// variables cmd reads them from (prefix BINDERBUILD_).
type Config struct {
	BaseURL           string        `split_words:"true" default:"/" desc:"URL prefix of every route; normalised to start and end with /"`
	APIOnly           bool          `split_words:"true" default:"true" desc:"build-only service: build_only=true is honoured only when true (upstream enable_api_only_mode)"`
	HeartbeatInterval time.Duration `split_words:"true" default:"30s" desc:"interval of the :heartbeat comment on event streams"`
	// ClientStallTimeout drops a waiting client that reads nothing for that
	// long while events wait for it; others are never held up by it.
	ClientStallTimeout time.Duration `split_words:"true" default:"10s" desc:"how long a waiting client may read nothing of the events sent to it before it is disconnected"`
	ImagePrefix        string        `split_words:"true" desc:"prefix of built image names, e.g. registry.example.com/binder/r2d- (empty: the embedded registry, see BINDERBUILD_EMBEDDED_REGISTRY_LISTEN)"`
	// FallbackDelay is the pause before retrying a GitHub master/main link
	// with HEAD; upstream waits 10 s on purpose so broken links get fixed.
	// Zero: no pause.
	FallbackDelay time.Duration `split_words:"true" default:"10s" desc:"pause after the 'Trying again with HEAD' event of a GitHub link to a missing master or main branch, before building HEAD (upstream: 10s, so that broken links get fixed; 0: none)"`
	// MetricsToken guards /metrics and the details of /health.
	MetricsToken string `split_words:"true" desc:"bearer token that /metrics and the details of /health require (secret); without it /metrics is open, and /health shows its details unless authentication is on"`
	// HealthCacheTTL keeps probes from turning into load on the dependencies.
	HealthCacheTTL time.Duration `split_words:"true" default:"5s" desc:"how long /health reuses the results of its dependency checks"`
	// AccessConfig: authentication, rate limit, bans, spec lists, CORS.
	AccessConfig
	// LaunchConfig: launch mode (launch.go).
	LaunchConfig
	// CanaryConfig: the admin-only canary route (canary.go).
	CanaryConfig
}

// Provider parses and resolves the specs of one repository provider.
type Provider interface {
	Prefix() string
	// Parse parses a raw spec; its error text is shown to the user.
	Parse(spec string) (binderbuild.Repo, error)
	// Resolve resolves the ref; binderbuild.ErrRefNotFound when it does not
	// exist, any other error's text is shown to the user.
	Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error)
	// Display is the provider's /api/repoproviders entry.
	Display() any
}

// ImageChecker tells whether an image is already in the registry.
type ImageChecker interface {
	Exists(ctx context.Context, image string) (bool, error)
}

// Builder starts or joins the build of an image and returns its log, and
// whether the request joined a build already running (counted apart in
// binderbuild_build_requests_total). ctx is the client's: it ends when the
// client stops following the build, and a build still queued when all its
// clients have left may be dropped.
type Builder interface {
	Join(ctx context.Context, req binderbuild.BuildRequest) (log *events.Log, joined bool, err error)
}

// HealthCheck is one dependency reported by /health.
type HealthCheck struct {
	Service string
	Check   func(ctx context.Context) error
	// Optional checks are reported but do not turn /health into a 503.
	Optional bool
}

// Deps are the server's collaborators.
type Deps struct {
	Providers []Provider
	Images    ImageChecker
	Builder   Builder
	Health    []HealthCheck
	// MetricsHandler serves /metrics; nil leaves the route out.
	MetricsHandler http.Handler
	// Metrics counts /build requests and streams (NewMetrics); nil: none.
	Metrics *Metrics
	// Events receives the launch event of every /build request that ends
	// with ready or failed, and the build event of cache hits; nil: none.
	Events EventEmitter
	// UI serves the build page at {base_url}ui/ and, outside API-only mode,
	// at {base_url}; it sees the full request path. nil leaves it out.
	UI http.Handler
	// Version and BuildImage are reported by /versions.
	Version    string
	BuildImage string
	Log        *slog.Logger
	// AccessLog receives the access log: one line per request, as Log's
	// JSON handler would write it, but without a slog record per request.
	// nil: the lines go to Log.
	AccessLog io.Writer
	// Redactor removes the service's secrets and URL credentials from the
	// server's logs and /health; nil: URL credentials only.
	Redactor *events.Redactor
	// Auth identifies /build callers (NewAuth); nil: no authentication.
	Auth Authenticator
	// Now is the clock of rate limits, build tokens and the /health cache;
	// nil: time.Now.
	Now func() time.Time
	// Launcher starts servers for requests without build_only=true
	// (launch.go); nil: every request must ask for build_only=true.
	Launcher Launcher
}

// Server serves the binderbuild API.
type Server struct {
	cfg       Config
	deps      Deps
	providers map[string]Provider
	log       *slog.Logger
	health    *healthCache
	mux       http.Handler
	build     http.Handler // /build, around the router (routes.go)
	// limiter counts /build requests; nil when RateLimit is 0.
	limiter *rateLimiter
	// streams follows builds for /build clients (stream.go).
	streams *streams
	hits    *hits // what a cache hit writes, by resolved repository
	// answering counts /build requests in their handlers (yieldIfBusy).
	answering atomic.Int64

	requestIDs *requestIDs // ids of requests without an X-Request-Id
}

// New returns the API handler. ctx bounds the server's background work (the
// shared heartbeat); cancel it before http.Server.Shutdown so that open event
// streams end.
func New(ctx context.Context, cfg Config, deps Deps) *Server {
	cfg.BaseURL = NormalizeBaseURL(cfg.BaseURL)
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 30 * time.Second
	}
	if cfg.ClientStallTimeout <= 0 {
		cfg.ClientStallTimeout = 10 * time.Second
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Events == nil {
		deps.Events = (*events.Emitter)(nil) // emits nothing
	}
	s := &Server{
		cfg:        cfg,
		deps:       deps,
		providers:  make(map[string]Provider, len(deps.Providers)),
		log:        slog.New(deps.Redactor.Handler(deps.Log.Handler())), // no credentials in logs
		health:     newHealthCache(deps.Health, cfg.HealthCacheTTL, deps.Redactor.String, deps.Now),
		requestIDs: newRequestIDs(),
		hits:       newHits(cfg.ImagePrefix, deps.Events),
	}
	s.streams = newStreams(ctx, cfg.HeartbeatInterval, cfg.ClientStallTimeout, s.resultEvent)
	for _, p := range deps.Providers {
		s.providers[p.Prefix()] = p
	}
	if cfg.RateLimit > 0 {
		s.limiter = newRateLimiter(cfg.RateLimit, cfg.RateLimitPeriod, deps.Now)
	}
	deps.Metrics.countParked(s.streams.parked.Load)
	s.mux = s.router()
	s.build = s.buildRoute()
	return s
}

// NormalizeBaseURL makes base start and end with "/".
func NormalizeBaseURL(base string) string {
	b := strings.Trim(base, "/")
	if b == "" {
		return "/"
	}
	return "/" + b + "/"
}
