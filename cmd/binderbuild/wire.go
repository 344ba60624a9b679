package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/binderbuild/binderbuild/auth"
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

// wire builds every component from cfg. ctx is the server's lifetime; log
// must redact (cfg.redactor), as serve's does.
func wire(ctx context.Context, cfg config, getenv func(string) string, log *slog.Logger) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	emitter, err := newEmitter(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	providers, providerNames := newProviders(cfg, reg, log)
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
	var forget func() // in-service gc empties the registry cache
	if c, ok := images.(*registry.Checker); ok {
		forget = c.Forget
	}
	if err := startGC(ctx, cfg, kube, reg, forget, log); err != nil {
		return nil, err
	}
	if err := startUpgrades(ctx, cfg, log); err != nil {
		return nil, err
	}
	authn, hubCheck, err := auth.New(cfg.AuthConfig, &http.Client{Timeout: 30 * time.Second}, log)
	if err != nil {
		return nil, err
	}
	if hubCheck != nil {
		health = append(health, server.HealthCheck{Service: "JupyterHub API", Check: hubCheck})
	}
	launch, launchHealth, err := newLauncher(cfg, kube, log)
	if err != nil {
		return nil, err
	}
	health = append(health, launchHealth...)
	shared := builder.NewShared(ctx, exec, time.Minute,
		builder.WithMetrics(buildMetrics), builder.WithEvents(emitter), builder.WithLogger(log),
		builder.WithOwnerLimit(cfg.PerClientBuildLimit))
	srv := server.New(ctx, cfg.Config, server.Deps{
		Providers:      providers,
		Images:         images,
		Builder:        shared,
		Health:         append(health, execHealth...),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Metrics:        server.NewMetrics(reg, server.MetricsConfig{Providers: providerNames, RepoLabel: cfg.MetricsRepoLabel}),
		Events:         emitter,
		UI:             web.Handler(cfg.Config.BaseURL, uiOptions(launch, cfg.PageSettings)...),
		Version:        version(),
		BuildImage:     cfg.BuildImage,
		Log:            log,
		AccessLog:      cfg.accessLog,
		Redactor:       cfg.redactor(),
		Auth:           authn,
		Launcher:       launch,
	})
	return &app{handler: srv, close: func() { shared.Wait(); closeEmitter(emitter, log); registryStopped() }}, nil
}

// newProviders returns the providers enabled by BINDERBUILD_REPO_PROVIDERS,
// in that order and each behind the resolution cache, their upstream
// lookups bounded together, and their names as metrics and launch events
// report them.
func newProviders(cfg config, reg prometheus.Registerer, log *slog.Logger) ([]server.Provider, []string) {
	m := repoproviders.NewMetrics(reg)
	lim := repoproviders.NewLimiter(cfg.LimitConfig)
	var providers []server.Provider
	var names []string
	for _, prefix := range cfg.RepoProviders {
		p := newProvider(prefix, cfg, m, log)
		providers = append(providers, repoproviders.Cached(repoproviders.Limited(p, lim), cfg.RefCacheTTL, 0, m))
		repo, _ := p.Parse(exampleSpecs[prefix])
		names = append(names, repo.ProviderName)
	}
	return providers, names
}

// exampleSpecs holds a valid spec of each provider; parsing it tells the
// provider's name. checkProviders accepts exactly these prefixes.
var exampleSpecs = map[string]string{
	"gh":         "binder-examples/requirements/HEAD",
	"gist":       "u/0123abcd",
	"git":        "https%3A%2F%2Fgithub.com%2Fbinder-examples%2Frequirements/HEAD",
	"gl":         "group%2Fproject/HEAD",
	"zenodo":     "10.5281/zenodo.3242074",
	"figshare":   "10.6084/m9.figshare.9782777.v1",
	"hydroshare": "8f7c2f0341ef4180b0dbe97f59130756",
	"dataverse":  "10.7910/DVN/TJCLKP",
	"ckan":       "https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fmy-sample-dataset-001",
	"swh":        "swh:1:dir:d198bc9d7a6bcf6db04f476d29314f157507d505",
}

// newProvider builds the provider of one prefix (checked by checkProviders).
func newProvider(prefix string, cfg config, m *repoproviders.Metrics, log *slog.Logger) repoproviders.Provider {
	client := &http.Client{Timeout: 30 * time.Second}
	archives := cfg.ArchiveConfig
	archives.AllowedHosts = cfg.GitConfig.AllowedHosts
	switch prefix {
	case "gh":
		return repoproviders.NewGitHub(cfg.GitHubConfig, client, m, log)
	case "gist":
		return repoproviders.NewGist(repoproviders.GistConfig{GitHub: cfg.GitHubConfig, AllowSecretGist: cfg.GistAllowSecret}, m, log)
	case "git":
		return repoproviders.NewGit(cfg.GitConfig, m, log)
	case "gl":
		return repoproviders.NewGitLab(cfg.GitLabConfig, client, m, log)
	case "zenodo":
		return repoproviders.NewZenodo(archives, m, log)
	case "figshare":
		return repoproviders.NewFigshare(archives, m, log)
	case "hydroshare":
		return repoproviders.NewHydroShare(archives, m, log)
	case "dataverse":
		return repoproviders.NewDataverse(archives, m, log)
	case "ckan":
		return repoproviders.NewCKAN(archives, m, log)
	default: // "swh"
		return repoproviders.NewSWH(archives, m, log)
	}
}

// checkProviders validates BINDERBUILD_REPO_PROVIDERS: at least one
// known prefix, none twice.
func checkProviders(prefixes []string) error {
	invalid := fmt.Errorf("invalid BINDERBUILD_REPO_PROVIDERS=%q: want a comma list of distinct prefixes from gh, gist, git, gl, zenodo, figshare, hydroshare, dataverse, ckan, swh", strings.Join(prefixes, ","))
	if len(prefixes) == 0 {
		return invalid
	}
	seen := map[string]bool{}
	for _, p := range prefixes {
		if _, ok := exampleSpecs[p]; !ok || seen[p] {
			return invalid
		}
		seen[p] = true
	}
	return nil
}

// newImageChecker returns the registry checker and its health check. With
// no image prefix there is no registry: every image counts as not built.
func newImageChecker(cfg config, getenv func(string) string, reg prometheus.Registerer, log *slog.Logger) (server.ImageChecker, []server.HealthCheck, error) {
	if cfg.ImagePrefix == "" || !cfg.UseRegistry {
		return noRegistry{}, nil, nil
	}
	checker, err := registry.NewChecker(registry.Config{
		Keychain:      registry.Keychain(getenv("GOOGLE_APPLICATION_CREDENTIALS") != ""),
		ImagePrefix:   cfg.ImagePrefix,
		InsecureHosts: cfg.RegistryInsecureHosts,
		NegativeTTL:   cfg.RegistryNegativeTTL,
		PositiveTTL:   cfg.RegistryPositiveTTL,
	}, registry.NewMetrics(reg), log)
	if err != nil {
		return nil, nil, err
	}
	return checker, []server.HealthCheck{{Service: "Docker registry", Check: checker.Check}}, nil
}

// startGC runs registry retention on BINDERBUILD_GC_SCHEDULE, when set,
// in the registry of cfg (the embedded one when serve started it).
func startGC(ctx context.Context, cfg config, kube kubernetes.Interface, reg prometheus.Registerer, forget func(), log *slog.Logger) error {
	settings := cfg.gcSettings()
	if settings.Schedule == "" {
		return nil
	}
	gcCfg := gc.Config{Metrics: gc.NewMetrics(reg), Log: log}
	if settings.ProtectRunning {
		if kube == nil {
			return fmt.Errorf("%s_GC_PROTECT_RUNNING needs a Kubernetes cluster to see which images running pods use", envPrefix)
		}
		gcCfg.Pods = gc.NewKubernetesPods(kube, cfg.BuildNamespace)
	}
	collector, err := gc.New(gcCfg)
	if err != nil {
		return err
	}
	sched, err := gc.NewScheduler(collector, settings, log)
	if err != nil {
		return err
	}
	sched.OnDelete = forget
	go func() {
		if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("registry gc schedule stopped", "error", err)
		}
	}()
	return nil
}

type noRegistry struct{}

func (noRegistry) Exists(context.Context, string) (bool, error) { return false, nil }
