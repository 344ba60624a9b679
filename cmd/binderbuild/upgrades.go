package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/binderbuild/binderbuild/upgrades"
)

// upgradesHelp is `binderbuild upgrades --help`.
const upgradesHelp = `Usage: binderbuild upgrades [--repo OWNER/NAME] [--config FILE] [--apply] [--json] [flags]

Keeps a deployment current: for every dependency listed in the deployment
repository's binderbuild-upgrades.yaml (build image, docker-api image, Helm
charts), finds the latest version (sorted as versions; stable only unless
"prerelease: true"), edits only the version's bytes in the YAML file, and
opens one pull request per dependency on branch binderbuild-upgrades/<name>,
updating it in place on later runs and closing it once the deployment has
caught up. A pull request a person closed is not reopened for that version.

A DRY RUN IS THE DEFAULT: without --apply nothing is pushed; every bump is
printed with the unified diff it would commit.

Flags:
  --repo OWNER/NAME  clone the repository's base branch from GitHub and read
                     the configuration there (default: the current folder,
                     a checkout of the deployment repository).
  --config FILE      configuration file in the repository
                     (default binderbuild-upgrades.yaml).
  --apply            push branches and open, update or close pull requests.
  --fork             push to the authenticated user's fork instead.
  --json             print the report as JSON.
  --verify URL       before proposing a new build image, build the canary
                     repositories with it and with the current one on the
                     binderbuild service at URL (its canary token in
                     BINDERBUILD_UPGRADES_VERIFY_TOKEN); a failing canary
                     opens the pull request as a draft with the log tail.
  --max-wait D       longest GitHub rate-limit wait before stopping (1m).

Settings from the environment (also used by the Helm CronJob and the
in-service schedule BINDERBUILD_UPGRADES_SCHEDULE, e.g. @daily):
  BINDERBUILD_UPGRADES_GITHUB_TOKEN   token (falls back to GITHUB_TOKEN), or
  BINDERBUILD_UPGRADES_GITHUB_APP_ID and BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE
                                      a GitHub App (its pull requests run CI)
  BINDERBUILD_GITHUB_API_URL          GitHub API (default https://api.github.com)
  BINDERBUILD_REGISTRY_INSECURE_HOSTS registry hosts reached over plain HTTP
  BINDERBUILD_UPGRADES_REPO, _CONFIG, _APPLY, _FORK, _VERIFY_URL, _MAX_WAIT
Registry credentials come from the docker config ($DOCKER_CONFIG/config.json).

Examples:
  binderbuild upgrades                               # dry run in a checkout
  binderbuild upgrades --repo my-org/my-hub-deploy   # dry run from GitHub
  binderbuild upgrades --repo my-org/my-hub-deploy --apply --verify https://binder.example.org/

Exit status: 0 when done or nothing to do, 1 when a dependency failed, 2 for
a usage error.
`

// errUpgradesFailed is the exit status 1 of a run where a dependency failed;
// the report has said which.
var errUpgradesFailed = errors.New("upgrades: some dependencies failed (see the report)")

// upgradesCommand is `binderbuild upgrades`.
func upgradesCommand(ctx context.Context, args []string, lookup lookupFunc, stdout, stderr io.Writer) error {
	s, err := upgradesSettings(lookup)
	if err != nil {
		return usageError{"upgrades: " + err.Error()}
	}
	fs := flag.NewFlagSet("upgrades", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&s.Repo, "repo", s.Repo, "")
	fs.StringVar(&s.ConfigFile, "config", s.ConfigFile, "")
	fs.BoolVar(&s.Apply, "apply", s.Apply, "")
	fs.BoolVar(&s.Fork, "fork", s.Fork, "")
	fs.StringVar(&s.VerifyURL, "verify", s.VerifyURL, "")
	fs.DurationVar(&s.MaxWait, "max-wait", s.MaxWait, "")
	jsonOut := fs.Bool("json", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, upgradesHelp)
			return nil
		}
		return usageError{fmt.Sprintf("upgrades: %v (see binderbuild upgrades --help)", err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("upgrades takes no arguments, got %q (see binderbuild upgrades --help)", fs.Args())}
	}
	if err := s.Validate(); err != nil {
		return usageError{"upgrades: " + err.Error()}
	}
	var progress io.Writer
	if isTerm, _ := terminal(stderr); isTerm {
		progress = stderr
	}
	rep, err := upgrades.Execute(ctx, s, progress, nil)
	if err != nil {
		return fmt.Errorf("upgrades: %w", err)
	}
	write := upgrades.WriteText
	if *jsonOut {
		write = upgrades.WriteJSON
	}
	if err := write(stdout, rep); err != nil {
		return err
	}
	if rep.Failures() > 0 {
		return errUpgradesFailed
	}
	return nil
}

// upgradesSettings reads the BINDERBUILD_UPGRADES_* settings and the
// service's GitHub API and insecure registry hosts as serve reads them.
func upgradesSettings(lookup lookupFunc) (upgrades.Settings, error) {
	var cfg config
	if err := loadSettings(envPrefix, &cfg, lookup); err != nil {
		return upgrades.Settings{}, err
	}
	return cfg.upgradesSettings(), nil
}

// upgradesSettings are the BINDERBUILD_UPGRADES_* settings with the
// service's GitHub API and insecure registry hosts. Spaces around the
// strings are trimmed, as the bot always did.
func (c config) upgradesSettings() upgrades.Settings {
	s := c.Upgrades
	s.APIURL, s.InsecureHosts = c.APIBaseURL, c.RegistryInsecureHosts
	for _, v := range []*string{&s.Repo, &s.ConfigFile, &s.APIURL, &s.Auth.Token, &s.VerifyURL, &s.VerifyToken} {
		*v = strings.TrimSpace(*v)
	}
	return s
}

// startUpgrades runs the upgrade bot on BINDERBUILD_UPGRADES_SCHEDULE,
// when set.
func startUpgrades(ctx context.Context, cfg config, log *slog.Logger) error {
	s := cfg.upgradesSettings()
	if s.Schedule == "" {
		return nil
	}
	sched, err := upgrades.NewScheduler(s, log.With("component", "upgrades"))
	if err != nil {
		return fmt.Errorf("upgrades schedule: %w", err)
	}
	go func() {
		if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("upgrades schedule stopped", "error", err)
		}
	}()
	return nil
}
