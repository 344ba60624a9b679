// Package server is binderbuild's HTTP front: the BinderHub-compatible
// /build event stream, health, versions and provider listings. It declares
// the small interfaces it consumes; cmd wires the concrete types in.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
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
	ImagePrefix       string        `split_words:"true" desc:"prefix of built image names, e.g. registry.example.com/binder/r2d- (empty: no registry)"`
	// FallbackDelay is the pause before retrying a GitHub master/main link
	// with HEAD; upstream waits 10 s on purpose so broken links get fixed.
	FallbackDelay time.Duration `ignored:"true"`
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

// Builder starts or joins the build of an image and returns its log.
type Builder interface {
	Build(ctx context.Context, req binderbuild.BuildRequest) (*events.Log, error)
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
	// Metrics serves /metrics; nil leaves the route out.
	Metrics http.Handler
	// Version and BuildImage are reported by /versions.
	Version    string
	BuildImage string
	Log        *slog.Logger
}

// Server serves the binderbuild API.
type Server struct {
	cfg       Config
	deps      Deps
	providers map[string]Provider
	log       *slog.Logger
	beat      *heartbeat
	health    *healthCache
	mux       http.Handler
}

// New returns the API handler. ctx bounds the server's background work (the
// shared heartbeat); cancel it before http.Server.Shutdown so that open event
// streams end.
func New(ctx context.Context, cfg Config, deps Deps) *Server {
	cfg.BaseURL = NormalizeBaseURL(cfg.BaseURL)
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 30 * time.Second
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg,
		deps:      deps,
		providers: make(map[string]Provider, len(deps.Providers)),
		log:       deps.Log,
		beat:      newHeartbeat(ctx, cfg.HeartbeatInterval),
		health:    newHealthCache(deps.Health, healthCacheTTL),
	}
	for _, p := range deps.Providers {
		s.providers[p.Prefix()] = p
	}
	s.mux = s.router()
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
