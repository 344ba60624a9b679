package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/binderbuild/binderbuild/builder"
	"k8s.io/client-go/kubernetes"

	"github.com/binderbuild/binderbuild/registry"
	"github.com/binderbuild/binderbuild/registry/gc"
	"github.com/binderbuild/binderbuild/repoproviders"
	"github.com/binderbuild/binderbuild/server"
	"github.com/binderbuild/binderbuild/web"
)

// app is the wired service.
type app struct {
	handler http.Handler
	close   func()
}

// wire builds every component from cfg. ctx is the server's lifetime.
func wire(ctx context.Context, cfg config, getenv func(string) string, log *slog.Logger) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log = slog.New(cfg.redactor().Handler(log.Handler())) // no tokens or URL credentials in logs
	emitter, err := newEmitter(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	buildMetrics := builder.NewMetrics(reg, builder.MetricsConfig{RepoLabel: cfg.MetricsRepoLabel, Providers: providerNames})
	cfg.kubeTransport = buildMetrics.InstrumentTransport
	// Without BINDERBUILD_IMAGE_PREFIX: the embedded registry, which sets it.
	registryStopped, err := startEmbeddedRegistry(ctx, &cfg, log)
	if err != nil {
		return nil, err
	}

	images, health, err := newImageChecker(cfg, getenv, reg, log)
	if err != nil {
		return nil, err
	}
	exec, execHealth, kube, err := newExecutor(ctx, cfg, getenv, log)
	if err != nil {
		return nil, err
	}
	if err := startGC(ctx, getenv, kube, cfg.BuildNamespace, reg, log); err != nil {
		return nil, err
	}
	auth, authHealth, err := server.NewAuth(cfg.AccessConfig, &http.Client{Timeout: 30 * time.Second}, log)
	if err != nil {
		return nil, err
	}
	health = append(health, authHealth...)
	shared := builder.NewShared(ctx, exec, time.Minute,
		builder.WithMetrics(buildMetrics), builder.WithEvents(emitter), builder.WithLogger(log))
	srv := server.New(ctx, cfg.Config, server.Deps{
		Providers:      newProviders(cfg, reg, log),
		Images:         images,
		Builder:        shared,
		Health:         append(health, execHealth...),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Metrics:        server.NewMetrics(reg, server.MetricsConfig{Providers: providerNames}),
		Events:         emitter,
		UI:             web.Handler(cfg.BaseURL),
		Version:        version(),
		BuildImage:     cfg.BuildImage,
		Log:            log,
		Auth:           auth,
	})
	return &app{handler: srv, close: func() { shared.Wait(); closeEmitter(emitter, log); registryStopped() }}, nil
}

// newProviders returns gh, git and gl, each behind the resolution cache.
func newProviders(cfg config, reg prometheus.Registerer, log *slog.Logger) []server.Provider {
	m := repoproviders.NewMetrics(reg)
	client := &http.Client{Timeout: 30 * time.Second}
	raw := []repoproviders.Provider{
		repoproviders.NewGitHub(repoproviders.GitHubConfig{
			Hostname:     cfg.GithubHostname,
			APIBaseURL:   cfg.GithubApiUrl,
			AccessToken:  cfg.GithubToken,
			ClientID:     cfg.GithubClientId,
			ClientSecret: cfg.GithubClientSecret,
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
func newImageChecker(cfg config, getenv func(string) string, reg prometheus.Registerer, log *slog.Logger) (server.ImageChecker, []server.HealthCheck, error) {
	if cfg.ImagePrefix == "" {
		return noRegistry{}, nil, nil
	}
	checker, err := registry.NewChecker(registry.Config{
		Keychain:      registry.Keychain(getenv("GOOGLE_APPLICATION_CREDENTIALS") != ""),
		ImagePrefix:   cfg.ImagePrefix,
		InsecureHosts: cfg.RegistryInsecureHosts,
		NegativeTTL:   cfg.RegistryNegativeTTL,
	}, registry.NewMetrics(reg), log)
	if err != nil {
		return nil, nil, err
	}
	return checker, []server.HealthCheck{{Service: "Docker registry", Check: checker.Check}}, nil
}

// startGC runs registry retention on BINDERBUILD_GC_SCHEDULE, when set.
func startGC(ctx context.Context, getenv func(string) string, kube kubernetes.Interface, ns string, reg prometheus.Registerer, log *slog.Logger) error {
	settings, err := gc.SettingsFromEnv(getenv)
	if err != nil || settings.Schedule == "" {
		return err
	}
	cfg := gc.Config{Metrics: gc.NewMetrics(reg), Log: log}
	if settings.ProtectRunning {
		if kube == nil {
			return fmt.Errorf("%s needs a Kubernetes cluster to see which images running pods use", gc.EnvProtectRunning)
		}
		cfg.Pods = gc.NewKubernetesPods(kube, ns)
	}
	collector, err := gc.New(cfg)
	if err != nil {
		return err
	}
	sched, err := gc.NewScheduler(collector, settings, log)
	if err != nil {
		return err
	}
	go func() {
		if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("registry gc schedule stopped", "error", err)
		}
	}()
	return nil
}

type noRegistry struct{}

func (noRegistry) Exists(context.Context, string) (bool, error) { return false, nil }
