package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/registry"
	"github.com/binderbuild/binderbuild/repoproviders"
	"github.com/binderbuild/binderbuild/server"
)

// app is the wired service.
type app struct {
	handler http.Handler
	close   func()
}

// wire builds every component from cfg. ctx is the server's lifetime.
func wire(ctx context.Context, cfg config, log *slog.Logger) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	images, health, err := newImageChecker(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	shared := builder.NewShared(ctx, builder.Unavailable("No build executor is configured: this service cannot build images yet.\n"), time.Minute)
	srv := server.New(ctx, cfg.Config, server.Deps{
		Providers:  newProviders(cfg, reg, log),
		Images:     images,
		Builder:    shared,
		Health:     health,
		Metrics:    promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Version:    version(),
		BuildImage: cfg.BuildImage,
		Log:        log,
	})
	return &app{handler: srv, close: shared.Wait}, nil
}

// newProviders returns gh, git and gl, each behind the resolution cache.
func newProviders(cfg config, reg prometheus.Registerer, log *slog.Logger) []server.Provider {
	m := repoproviders.NewMetrics(reg)
	client := &http.Client{Timeout: 30 * time.Second}
	raw := []repoproviders.Provider{
		repoproviders.NewGitHub(repoproviders.GitHubConfig{
			Hostname:    cfg.GithubHostname,
			APIBaseURL:  cfg.GithubApiUrl,
			AccessToken: cfg.GithubToken,
		}, client, m, log),
		repoproviders.NewGit(repoproviders.GitConfig{
			AllowedProtocols: cfg.GitAllowedSchemes,
			AllowedHosts:     cfg.GitAllowedHosts,
		}, m, log),
		repoproviders.NewGitLab(repoproviders.GitLabConfig{
			BaseURL:      cfg.GitlabUrl,
			AccessToken:  cfg.GitlabAccessToken,
			PrivateToken: cfg.GitlabPrivateToken,
		}, client, m, log),
	}
	providers := make([]server.Provider, len(raw))
	for i, p := range raw {
		providers[i] = repoproviders.Cached(p, cfg.RefCacheTTL, 0, m)
	}
	return providers
}

// newImageChecker returns the registry checker and its health check. With
// no image prefix there is no registry: every image counts as not built.
func newImageChecker(cfg config, reg prometheus.Registerer, log *slog.Logger) (server.ImageChecker, []server.HealthCheck, error) {
	if cfg.ImagePrefix == "" {
		return noRegistry{}, nil, nil
	}
	checker, err := registry.NewChecker(registry.Config{
		ImagePrefix:   cfg.ImagePrefix,
		InsecureHosts: cfg.RegistryInsecureHosts,
		NegativeTTL:   cfg.RegistryNegativeTTL,
	}, registry.NewMetrics(reg), log)
	if err != nil {
		return nil, nil, err
	}
	return checker, []server.HealthCheck{{Service: "Docker registry", Check: checker.Check}}, nil
}

type noRegistry struct{}

func (noRegistry) Exists(context.Context, string) (bool, error) { return false, nil }
