package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/launcher"
	"github.com/binderbuild/binderbuild/repoproviders"
	"github.com/binderbuild/binderbuild/server"
)

// config is every setting of `binderbuild serve`, read from BINDERBUILD_*
// variables. Fields use split_words rather than envconfig:"NAME" tags, since
// a tag also makes envconfig fall back to the unprefixed $NAME (a stray
// $BASE_URL or $GITHUB_TOKEN would be read); hence names like GithubApiUrl.
type config struct {
	Listen   string `default:":8585" desc:"address to listen on"`
	LogLevel string `split_words:"true" default:"info" desc:"log level: debug, info, warn or error"`
	server.Config

	GithubApiUrl       string        `split_words:"true" default:"https://api.github.com" desc:"GitHub API base URL (GitHub Enterprise: https://<host>/api/v3)"`
	GithubHostname     string        `split_words:"true" default:"github.com" desc:"GitHub host of repository URLs"`
	GithubToken        string        `split_words:"true" desc:"GitHub access token (secret); falls back to GITHUB_ACCESS_TOKEN"`
	GithubClientId     string        `split_words:"true" desc:"GitHub OAuth app client id; with BINDERBUILD_GITHUB_CLIENT_SECRET and no token, API calls use it for the higher rate limit"`
	GithubClientSecret string        `split_words:"true" desc:"GitHub OAuth app client secret (secret)"`
	GitlabUrl          string        `split_words:"true" default:"https://gitlab.com" desc:"GitLab base URL"`
	GitlabAccessToken  string        `split_words:"true" desc:"GitLab access token (secret); falls back to GITLAB_ACCESS_TOKEN"`
	GitlabPrivateToken string        `split_words:"true" desc:"GitLab private token (secret); falls back to GITLAB_PRIVATE_TOKEN"`
	GitAllowedHosts    []string      `split_words:"true" desc:"comma list of git hosts (host or host:port) allowed even though they resolve to private or loopback addresses"`
	GitAllowedSchemes  []string      `split_words:"true" default:"https,http,git" desc:"URL schemes the git provider accepts"`
	RefCacheTTL        time.Duration `split_words:"true" default:"60s" desc:"how long a resolved branch or tag is reused before asking the provider again"`

	RepoProviders         []string `split_words:"true" default:"gh,gist,git,gl,zenodo,figshare,hydroshare,dataverse,ckan,swh" desc:"comma list of enabled repository providers (prefixes); default all"`
	GistAllowSecret       bool     `split_words:"true" default:"false" desc:"allow building secret gists"`
	DoiResolverUrl        string   `split_words:"true" default:"https://doi.org" desc:"DOI resolver followed for zenodo, figshare and dataverse DOIs"`
	ZenodoUrl             string   `split_words:"true" default:"https://zenodo.org" desc:"Zenodo base URL"`
	ZenodoAccessToken     string   `split_words:"true" desc:"Zenodo access token (secret), sent to BINDERBUILD_ZENODO_URL only"`
	FigshareApiUrl        string   `split_words:"true" default:"https://api.figshare.com/v2" desc:"Figshare API base URL"`
	FigshareAccessToken   string   `split_words:"true" desc:"Figshare access token (secret), sent to BINDERBUILD_FIGSHARE_API_URL only"`
	HydroshareUrl         string   `split_words:"true" default:"https://www.hydroshare.org" desc:"HydroShare base URL"`
	HydroshareAccessToken string   `split_words:"true" desc:"HydroShare access token (secret), sent to BINDERBUILD_HYDROSHARE_URL only"`
	DataverseApiToken     string   `split_words:"true" desc:"Dataverse API token (secret), sent to BINDERBUILD_DATAVERSE_TOKEN_HOST only"`
	DataverseTokenHost    string   `split_words:"true" default:"dataverse.harvard.edu" desc:"the Dataverse installation (host or host:port) BINDERBUILD_DATAVERSE_API_TOKEN belongs to"`
	SwhApiUrl             string   `split_words:"true" default:"https://archive.softwareheritage.org/api/1" desc:"Software Heritage API base URL"`
	GithubGitCredentials  string   `split_words:"true" desc:"git credentials of builds of GitHub repositories, e.g. username=<token>\\npassword=x-oauth-basic with a literal \\n (secret); git offers them to BINDERBUILD_GITHUB_HOSTNAME only. Default none: the API token never reaches builds"`
	GitlabGitCredentials  string   `split_words:"true" desc:"git credentials of builds of GitLab repositories, e.g. username=binderhub\\npassword=<token> with a literal \\n (secret); git offers them to the host of BINDERBUILD_GITLAB_URL only. Default none"`
	repoproviders.LimitConfig

	UseRegistry           bool          `split_words:"true" default:"true" desc:"push built images to the registry of BINDERBUILD_IMAGE_PREFIX (without one: the embedded registry) and look for them there; false: no registry, every request builds"`
	RegistryInsecureHosts []string      `split_words:"true" desc:"comma list of registry hosts reached over plain HTTP, e.g. 127.0.0.1:5000"`
	RegistryNegativeTTL   time.Duration `split_words:"true" default:"5s" desc:"how long 'image not built' answers of the registry are reused"`
	RegistryPositiveTTL   time.Duration `split_words:"true" default:"10m" desc:"how long 'image built' answers of the registry are reused; an image deleted behind the service's back (not by its own gc schedule, which clears them) is reported as built for at most that long"`

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

// loadConfig reads the environment. An invalid setting is one error line
// naming the variable.
func loadConfig(getenv func(string) string) (config, error) {
	var cfg config
	if err := envconfig.Process(envPrefix, &cfg); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return cfg, fmt.Errorf("invalid %s=%q: %v", pe.KeyName, pe.Value, pe.Err)
		}
		return cfg, err
	}
	fallback(&cfg.GithubToken, getenv("GITHUB_ACCESS_TOKEN"))
	fallback(&cfg.GitlabAccessToken, getenv("GITLAB_ACCESS_TOKEN"))
	fallback(&cfg.GitlabPrivateToken, getenv("GITLAB_PRIVATE_TOKEN"))
	// binderhub-service's chart sets these; they replace its Python config.
	fallback(&cfg.BuildNamespace, getenv("BUILD_NAMESPACE"))
	fallback(&cfg.BuildNamespace, getenv("NAMESPACE"))
	fallback(&cfg.BuildNamespace, "default")
	fallback(&cfg.PushSecret, getenv("PUSH_SECRET_NAME"))
	if ns, release := getenv("NAMESPACE"), getenv("HELM_RELEASE_NAME"); ns != "" && release != "" {
		fallback(&cfg.DockerHost, "/var/run/"+ns+"-"+release+"/docker-api/docker-api.sock")
	}
	fallback(&cfg.DockerHost, "/var/run/docker.sock")
	fallback(&cfg.DataDir, defaultDataDir(getenv))
	cfg.Push = cfg.UseRegistry && cfg.ImagePrefix != ""
	cfg.BaseURL = server.NormalizeBaseURL(cfg.BaseURL)
	if err := cfg.AccessConfig.FromJupyterHubEnv(getenv); err != nil { // JUPYTERHUB_API_URL, scopes
		return cfg, err
	}
	if err := cfg.launchFromEnv(getenv); err != nil {
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
	if err := checkProviders(c.RepoProviders); err != nil {
		return err
	}
	for name, v := range map[string]string{"BINDERBUILD_GITHUB_API_URL": c.GithubApiUrl, "BINDERBUILD_GITLAB_URL": c.GitlabUrl,
		"BINDERBUILD_DOI_RESOLVER_URL": c.DoiResolverUrl, "BINDERBUILD_ZENODO_URL": c.ZenodoUrl, "BINDERBUILD_FIGSHARE_API_URL": c.FigshareApiUrl,
		"BINDERBUILD_HYDROSHARE_URL": c.HydroshareUrl, "BINDERBUILD_SWH_API_URL": c.SwhApiUrl} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("invalid %s=%q: want an http(s) URL", name, v)
		}
	}
	return nil
}
