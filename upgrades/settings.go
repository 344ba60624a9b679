package upgrades

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Environment variables read by SettingsFromEnv. The GitHub API URL and
// the insecure registry hosts are the service's own settings.
const (
	EnvGitHubAPIURL  = "BINDERBUILD_GITHUB_API_URL"
	EnvInsecureHosts = "BINDERBUILD_REGISTRY_INSECURE_HOSTS"
	EnvToken         = "BINDERBUILD_UPGRADES_GITHUB_TOKEN"
	EnvAppID         = "BINDERBUILD_UPGRADES_GITHUB_APP_ID"
	EnvAppKeyFile    = "BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE"
	EnvRepo          = "BINDERBUILD_UPGRADES_REPO"
	EnvConfig        = "BINDERBUILD_UPGRADES_CONFIG"
	EnvApply         = "BINDERBUILD_UPGRADES_APPLY"
	EnvFork          = "BINDERBUILD_UPGRADES_FORK"
	EnvVerifyURL     = "BINDERBUILD_UPGRADES_VERIFY_URL"
	EnvVerifyToken   = "BINDERBUILD_UPGRADES_VERIFY_TOKEN"
	EnvMaxWait       = "BINDERBUILD_UPGRADES_MAX_WAIT"
	EnvSchedule      = "BINDERBUILD_UPGRADES_SCHEDULE"
)

// DefaultGitHubAPIURL is GitHub's REST API.
const DefaultGitHubAPIURL = "https://api.github.com"

// Settings are the inputs of one run. The CLI, the Helm CronJob and the
// in-service schedule all start from SettingsFromEnv.
type Settings struct {
	// Repo ("owner/name"), when set, is cloned and read; otherwise Dir,
	// a checkout of the deployment repository.
	Repo string
	Dir  string
	// ConfigFile is the configuration's path in the repository. Default
	// DefaultConfigFile.
	ConfigFile string
	// Apply pushes and opens pull requests; Fork pushes to a fork.
	Apply, Fork bool
	// APIURL is the GitHub API. Default DefaultGitHubAPIURL.
	APIURL string
	// Auth authenticates with GitHub.
	Auth GitHubAuth
	// InsecureHosts are registry hosts reached over plain HTTP.
	InsecureHosts []string
	// VerifyURL and VerifyToken, when set, run canary builds on that
	// binderbuild service with its canary token.
	VerifyURL, VerifyToken string
	// MaxWait is the longest rate-limit wait. Default DefaultMaxWait.
	MaxWait time.Duration
	// Schedule is the in-service schedule (cron expression or @daily…);
	// "" means none.
	Schedule string
}

// SettingsFromEnv reads Settings through getenv: BINDERBUILD_UPGRADES_*,
// BINDERBUILD_GITHUB_API_URL and BINDERBUILD_REGISTRY_INSECURE_HOSTS; the
// token falls back to GITHUB_TOKEN. The App key is read from its file.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{
		Repo:        strings.TrimSpace(getenv(EnvRepo)),
		Dir:         ".",
		ConfigFile:  strings.TrimSpace(getenv(EnvConfig)),
		APIURL:      strings.TrimSpace(getenv(EnvGitHubAPIURL)),
		Auth:        GitHubAuth{Token: strings.TrimSpace(getenv(EnvToken))},
		VerifyURL:   strings.TrimSpace(getenv(EnvVerifyURL)),
		VerifyToken: strings.TrimSpace(getenv(EnvVerifyToken)),
		MaxWait:     DefaultMaxWait,
		Schedule:    strings.TrimSpace(getenv(EnvSchedule)),
	}
	if s.Auth.Token == "" {
		s.Auth.Token = strings.TrimSpace(getenv("GITHUB_TOKEN"))
	}
	for _, h := range strings.Split(getenv(EnvInsecureHosts), ",") {
		if h = strings.TrimSpace(h); h != "" {
			s.InsecureHosts = append(s.InsecureHosts, h)
		}
	}
	var errs []error
	set := func(name string, parse func(string) error) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if err := parse(v); err != nil {
				errs = append(errs, fmt.Errorf("invalid %s=%q: %v", name, v, err))
			}
		}
	}
	set(EnvApply, func(v string) (err error) { s.Apply, err = strconv.ParseBool(v); return })
	set(EnvFork, func(v string) (err error) { s.Fork, err = strconv.ParseBool(v); return })
	set(EnvMaxWait, func(v string) (err error) { s.MaxWait, err = time.ParseDuration(v); return })
	set(EnvAppID, func(v string) (err error) { s.Auth.AppID, err = strconv.ParseInt(v, 10, 64); return })
	set(EnvAppKeyFile, func(v string) (err error) { s.Auth.AppKey, err = os.ReadFile(v); return })
	set(EnvSchedule, func(v string) error { _, err := cron.ParseStandard(v); return err })
	return s, errors.Join(errs...)
}

// Validate checks s before a run.
func (s Settings) Validate() error {
	if s.Repo != "" && !repoPattern.MatchString(s.Repo) {
		return fmt.Errorf("repository %q: want owner/name", s.Repo)
	}
	if u, err := url.Parse(s.apiURL()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("invalid %s=%q: want an http(s) URL", EnvGitHubAPIURL, s.APIURL)
	}
	if s.Apply && s.Auth.Token == "" && (s.Auth.AppID == 0 || len(s.Auth.AppKey) == 0) {
		return fmt.Errorf("--apply needs GitHub credentials: %s (or GITHUB_TOKEN), or %s and %s", EnvToken, EnvAppID, EnvAppKeyFile)
	}
	if s.VerifyURL != "" {
		if u, err := url.Parse(s.VerifyURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--verify %q: want the http(s) URL of a binderbuild service", s.VerifyURL)
		}
		if s.VerifyToken == "" {
			return fmt.Errorf("--verify needs the service's canary token in %s", EnvVerifyToken)
		}
	}
	if s.MaxWait < 0 {
		return errors.New("negative rate-limit wait")
	}
	return nil
}

func (s Settings) apiURL() string {
	if s.APIURL == "" {
		return DefaultGitHubAPIURL
	}
	return s.APIURL
}

// Execute runs the upgrades of s: it reads the configuration (from a clone
// of Repo, else from Dir) and runs a Bot. progress, when not nil, gets a
// line per dependency. The error is for what stops the run before any
// dependency (no configuration, bad credentials); the report says how each
// dependency went.
func Execute(ctx context.Context, s Settings, progress io.Writer, log *slog.Logger) (Report, error) {
	if err := s.Validate(); err != nil {
		return Report{}, err
	}
	file := s.ConfigFile
	if file == "" {
		file = DefaultConfigFile
	}
	gh, files, err := s.open(ctx)
	if err != nil {
		return Report{}, err
	}
	data, err := files.ReadFile(file)
	if err != nil {
		return Report{}, fmt.Errorf("configuration: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Report{}, err
	}
	repo := s.Repo
	if co, ok := files.(*Checkout); ok && cfg.Base != "" && cfg.Base != co.branch {
		if files, err = gh.Clone(ctx, repo, cfg.Base); err != nil {
			return Report{}, err
		}
	}
	if gh == nil && s.Apply {
		if gh, err = NewGitHub(ctx, s.apiURL(), s.Auth, cfg.Repository, s.MaxWait); err != nil {
			return Report{}, err
		}
	}
	sources := Sources{InsecureHosts: s.InsecureHosts}
	bot := &Bot{Sources: sources, GitHub: gh, Apply: s.Apply, Fork: s.Fork, Progress: progress}
	if s.VerifyURL != "" {
		bot.Verifier = &Verifier{URL: strings.TrimSuffix(s.VerifyURL, "/") + "/", Token: s.VerifyToken, Sources: sources}
	}
	rep := bot.Run(ctx, cfg, files)
	if log != nil {
		log.InfoContext(ctx, "upgrades run done", "repository", rep.Repository, "dry_run", rep.DryRun, "dependencies", len(rep.Results), "failed", rep.Failures())
	}
	return rep, nil
}

// open clones Repo through GitHub, or opens the local checkout Dir (no
// GitHub client then).
func (s Settings) open(ctx context.Context) (*GitHub, Files, error) {
	if s.Repo == "" {
		files, err := dirFiles(s.Dir)
		return nil, files, err
	}
	gh, err := NewGitHub(ctx, s.apiURL(), s.Auth, s.Repo, s.MaxWait)
	if err != nil {
		return nil, nil, err
	}
	co, err := gh.Clone(ctx, s.Repo, "")
	return gh, co, err
}

// rootFiles reads files of a local checkout; symbolic links cannot lead
// out of it.
type rootFiles struct{ root *os.Root }

// dirFiles opens the checkout at dir. The root stays open for the run.
func dirFiles(dir string) (Files, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("deployment checkout: %w", err)
	}
	return rootFiles{r}, nil
}

// ReadFile reads name, at most maxFileBytes of it.
func (f rootFiles) ReadFile(name string) ([]byte, error) {
	file, err := f.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxFileBytes+1))
	if err == nil && len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxFileBytes>>20)
	}
	return data, err
}
