package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/binderbuild/binderbuild/auth"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/launcher"
	"github.com/binderbuild/binderbuild/registry/gc"
	"github.com/binderbuild/binderbuild/repoproviders"
	"github.com/binderbuild/binderbuild/server"
	"github.com/binderbuild/binderbuild/upgrades"
)

// config is every setting of `binderbuild serve`, read from BINDERBUILD_*
// variables by loadSettings, named from the fields as envconfig names them
// (split_words: GithubApiUrl is BINDERBUILD_GITHUB_API_URL). Other names a
// setting accepts are in its fallback tag.
type config struct {
	Listen   string `default:":8585" desc:"address to listen on"`
	LogLevel string `split_words:"true" default:"info" desc:"log level: debug, info, warn or error"`
	server.Config
	AuthConfig

	repoproviders.GitHubConfig
	repoproviders.GitLabConfig
	repoproviders.GitConfig
	RefCacheTTL time.Duration `split_words:"true" default:"60s" desc:"how long a resolved branch or tag is reused before asking the provider again"`

	RepoProviders   []string `split_words:"true" default:"gh,gist,git,gl,zenodo,figshare,hydroshare,dataverse,ckan,swh" desc:"comma list of enabled repository providers (prefixes); default all"`
	GistAllowSecret bool     `split_words:"true" default:"false" desc:"allow building secret gists"`
	repoproviders.ArchiveConfig
	repoproviders.LimitConfig

	UseRegistry           bool          `split_words:"true" default:"true" desc:"push built images to the registry of BINDERBUILD_IMAGE_PREFIX (without one: the embedded registry) and look for them there; false: no registry, every request builds"`
	RegistryInsecureHosts []string      `split_words:"true" desc:"comma list of registry hosts reached over plain HTTP, e.g. 127.0.0.1:5000"`
	RegistryNegativeTTL   time.Duration `split_words:"true" default:"5s" desc:"how long 'image not built' answers of the registry are reused"`
	RegistryPositiveTTL   time.Duration `split_words:"true" default:"10m" desc:"how long 'image built' answers of the registry are reused; an image deleted behind the service's back (not by its own gc schedule, which clears them) is reported as built for at most that long"`
	// GC is registry retention (BINDERBUILD_GC_*), of `binderbuild gc` and
	// of serve's schedule; its image prefix and insecure hosts are the ones
	// above.
	GC gc.Settings
	// Upgrades is the upgrade bot (BINDERBUILD_UPGRADES_*), of `binderbuild
	// upgrades` and of serve's schedule; its GitHub API URL and insecure
	// hosts are the service's.
	Upgrades upgrades.Settings

	Executor string `default:"auto" desc:"how images are built: kubernetes, local (containers on the engine at DOCKER_HOST, default unix:///var/run/docker.sock), or auto (kubernetes when in a cluster or KUBECONFIG is set, else local)"`
	builder.KubeConfig
	LocalSettings
	PerClientBuildLimit int `split_words:"true" default:"3" desc:"most builds one client (an authenticated user, else a client address, IPv6 by /64) may have started and running at once; joining a running build does not count (0: no limit)"`
	LaunchSettings
	launcher.QuotaConfig
	PageSettings

	MetricsRepoLabel bool `split_words:"true" default:"true" desc:"label binderhub_build_count_total and binderhub_launch_count_total with the repository URL (repo), as upstream; false leaves it empty to bound the number of series"`
	events.SinkConfig
	// stdout receives the events of the stdout sink; nil: os.Stdout.
	stdout io.Writer
	// accessLog receives the access log lines, in the log's format; nil:
	// they go through the logger.
	accessLog io.Writer
	// kubeTransport wraps the Kubernetes client's transport (request
	// metrics); set by wire.
	kubeTransport func(http.RoundTripper) http.RoundTripper
}

// AuthConfig names auth.Config for embedding beside server.Config: its
// variables keep their unprefixed names (BINDERBUILD_AUTH, ...).
type AuthConfig = auth.Config

// loadConfig reads the settings through lookup (os.LookupEnv in serve). An
// invalid setting is one error line naming the variable.
func loadConfig(lookup lookupFunc) (config, error) {
	var cfg config
	if err := loadSettings(envPrefix, &cfg, lookup); err != nil {
		return cfg, err
	}
	getenv := func(k string) string { v, _ := lookup(k); return v }
	// binderhub-service's chart sets NAMESPACE and HELM_RELEASE_NAME.
	if ns, release := getenv("NAMESPACE"), getenv("HELM_RELEASE_NAME"); ns != "" && release != "" {
		fallback(&cfg.DockerHost, "/var/run/"+ns+"-"+release+"/docker-api/docker-api.sock")
	}
	fallback(&cfg.DockerHost, "/var/run/docker.sock")
	fallback(&cfg.DataDir, defaultDataDir(getenv))
	cfg.Push = cfg.UseRegistry && cfg.ImagePrefix != ""
	cfg.Config.BaseURL = server.NormalizeBaseURL(cfg.Config.BaseURL)
	scopes, err := cfg.AuthConfig.HubScopes()
	if err != nil {
		return cfg, err
	}
	cfg.RequiredScopes = scopes
	if err := cfg.checkLaunch(); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func fallback(v *string, alt string) {
	if *v == "" {
		*v = alt
	}
}

func (c config) validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("invalid BINDERBUILD_LISTEN=%q: want host:port, e.g. :8585", c.Listen)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("invalid BINDERBUILD_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.Executor != "auto" && c.Executor != "kubernetes" && c.Executor != "local" {
		return fmt.Errorf("invalid BINDERBUILD_EXECUTOR=%q: want kubernetes, local or auto", c.Executor)
	}
	if err := c.KubeConfig.Validate(); err != nil {
		return err
	}
	if err := c.AuthConfig.Validate(); err != nil {
		return err
	}
	if err := c.AccessConfig.Validate(); err != nil {
		return err
	}
	if err := c.SinkConfig.Validate(); err != nil {
		return err
	}
	if c.PerClientBuildLimit < 0 {
		return fmt.Errorf("invalid BINDERBUILD_PER_CLIENT_BUILD_LIMIT=%d: want 0 (no limit) or more", c.PerClientBuildLimit)
	}
	if c.HeartbeatInterval <= 0 {
		return fmt.Errorf("invalid BINDERBUILD_HEARTBEAT_INTERVAL=%s: must be positive", c.HeartbeatInterval)
	}
	if err := checkGC(c.GC); err != nil {
		return err
	}
	if err := checkProviders(c.RepoProviders); err != nil {
		return err
	}
	for name, v := range map[string]string{"BINDERBUILD_GITHUB_API_URL": c.APIBaseURL, "BINDERBUILD_GITLAB_URL": c.GitLabConfig.BaseURL,
		"BINDERBUILD_DOI_RESOLVER_URL": c.DOIResolverURL, "BINDERBUILD_ZENODO_URL": c.ZenodoURL, "BINDERBUILD_FIGSHARE_API_URL": c.FigshareAPIURL,
		"BINDERBUILD_HYDROSHARE_URL": c.HydroShareURL, "BINDERBUILD_SWH_API_URL": c.SWHAPIURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("invalid %s=%q: want an http(s) URL", name, v)
		}
	}
	return nil
}
