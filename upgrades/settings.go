package upgrades

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild/internal/schedule"
)

// DefaultGitHubAPIURL is GitHub's REST API.
const DefaultGitHubAPIURL = "https://api.github.com"

// Settings are the inputs of one run. The CLI, the Helm CronJob and the
// in-service schedule all read them with cmd's settings loader, as
// BINDERBUILD_UPGRADES_* variables named after the fields (the tags are
// envconfig's; default and desc feed the docs). The GitHub API URL and the
// insecure registry hosts are the service's own settings, copied by cmd.
type Settings struct {
	// Repo ("owner/name"), when set, is cloned and read; otherwise Dir,
	// a checkout of the deployment repository (default ".").
	Repo string `desc:"upgrade bot: owner/name of the deployment repository on GitHub, cloned and read (binderbuild upgrades: default the current folder; the schedule needs it)"`
	Dir  string `ignored:"true"`
	// ConfigFile is the configuration's path in the repository. Default
	// DefaultConfigFile.
	ConfigFile string `envconfig:"CONFIG" desc:"upgrade bot: configuration file in the repository (empty: binderbuild-upgrades.yaml)"`
	// Apply pushes and opens pull requests; Fork pushes to a fork.
	Apply bool `default:"false" desc:"upgrade bot: push branches and open, update or close pull requests; false: a dry run that only reports"`
	Fork  bool `default:"false" desc:"upgrade bot: push to the authenticated user's fork instead of the repository"`
	// APIURL is the GitHub API. Default DefaultGitHubAPIURL.
	APIURL string `ignored:"true"`
	// Auth authenticates with GitHub.
	Auth GitHubAuth `envconfig:"GITHUB"`
	// InsecureHosts are registry hosts reached over plain HTTP.
	InsecureHosts []string `ignored:"true"`
	// VerifyURL and VerifyToken, when set, run canary builds on that
	// binderbuild service with its canary token.
	VerifyURL   string `split_words:"true" desc:"upgrade bot: URL of a binderbuild service that builds the canary repositories with a proposed build image"`
	VerifyToken string `split_words:"true" desc:"upgrade bot: canary token of the service at BINDERBUILD_UPGRADES_VERIFY_URL (secret)"`
	// MaxWait is the longest rate-limit wait. Default DefaultMaxWait.
	MaxWait time.Duration `split_words:"true" default:"1m" desc:"upgrade bot: longest GitHub rate-limit wait before stopping"`
	// Schedule is the in-service schedule (cron expression or @daily…);
	// "" means none.
	Schedule schedule.Spec `desc:"upgrade bot schedule of binderbuild serve: a cron expression (0 3 * * *), @daily or @every 6h; empty: none (the chart's CronJob runs binderbuild upgrades instead)"`
}

// KeyFile is the content of a file: as a setting, the file's name.
type KeyFile []byte

// UnmarshalText reads the file named text; spaces around the name are
// trimmed, and no name is no content.
func (k *KeyFile) UnmarshalText(text []byte) error {
	*k = nil
	name := strings.TrimSpace(string(text))
	if name == "" {
		return nil
	}
	b, err := os.ReadFile(name)
	*k = b
	return err
}

// Validate checks s before a run.
func (s Settings) Validate() error {
	if s.Repo != "" && !repoPattern.MatchString(s.Repo) {
		return fmt.Errorf("repository %q: want owner/name", s.Repo)
	}
	if u, err := url.Parse(s.apiURL()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("invalid BINDERBUILD_GITHUB_API_URL=%q: want an http(s) URL", s.APIURL)
	}
	if s.Apply && s.Auth.Token == "" && (s.Auth.AppID == 0 || len(s.Auth.AppKey) == 0) {
		return errors.New("--apply needs GitHub credentials: BINDERBUILD_UPGRADES_GITHUB_TOKEN (or GITHUB_TOKEN), or BINDERBUILD_UPGRADES_GITHUB_APP_ID and BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE")
	}
	if s.VerifyURL != "" {
		if u, err := url.Parse(s.VerifyURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--verify %q: want the http(s) URL of a binderbuild service", s.VerifyURL)
		}
		if s.VerifyToken == "" {
			return errors.New("--verify needs the service's canary token in BINDERBUILD_UPGRADES_VERIFY_TOKEN")
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
		files, err := dirFiles(cmp.Or(s.Dir, "."))
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
