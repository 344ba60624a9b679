package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild/internal/units"
	"github.com/binderbuild/binderbuild/registry/gc"
)

// gcHelp is `binderbuild gc --help`; %s are the current defaults.
const gcHelp = `Usage: binderbuild gc [flags]

Deletes old images that this service built from its image registry, to keep
the registry within budget. Every repository of the registry whose name starts
with the image prefix (BINDERBUILD_IMAGE_PREFIX) is listed with its tags,
digests, creation times and compressed sizes; the policies below choose images,
the protections spare some, and the rest is deleted by digest.

A DRY RUN IS THE DEFAULT: without --delete nothing is deleted and a report says
what would be deleted, why, and how many bytes that frees. Deleting only
unlinks images; the registry frees the space in its own garbage collection
(distribution registry: "registry garbage-collect <config>"; hosted registries
do it by themselves; see registry/gc/README.md).

Policies (combinable; an image goes if ANY policy chooses it):
  --max-age=DURATION     delete images created more than DURATION ago.
                         Durations: 30d, 12h, 90m, 2w, 1d12h (w=7 days, d=24h).
                         Example: --max-age=30d                      (now: %s)
  --keep=N               keep only the newest N images of each repository
                         (one image per commit); older ones are deleted. This
                         is a policy, not a protection: with --max-age an old
                         image goes even if it is the newest.
                         Example: --keep=3                           (now: %s)
  --max-total-size=SIZE  a budget for all images under the prefix (compressed,
                         layers shared between images counted once). After the
                         other policies, while the rest is over SIZE, delete
                         more in --aggressive order until it fits.
                         Sizes are Kubernetes quantities: 500Gi, 1.5T, 200M
                         (Ki/Mi/Gi/Ti = 1024^n, k/M/G/T = 1000^n).
                         Example: --max-total-size=500Gi             (now: %s)
  --aggressive=ORDER     order of the size cap: "largest" images first, or
                         "oldest" first.                             (now: %s)
  --pattern=REGEXP       delete every image whose "repository:tag" (registry
                         host included) matches REGEXP (RE2, unanchored);
                         repeatable. Names are stored escaped: "-" is "-2d",
                         so CI repositories look like ...ci-2drepos...
                         Example: --pattern='ci-2drepos'             (now: %s)
  --purge                delete EVERYTHING under the prefix. Refused unless
  --confirm-purge=PREFIX repeats the image prefix exactly.
                         Example: --purge --confirm-purge=%s

Protections (they win over every policy, purge included):
  --min-age=DURATION     never delete images younger than DURATION (nor
                         images whose creation time is unknown); 0 turns it
                         off. Protects images that were just built and are
                         about to be launched.                       (now: %s)
  --protect-running      never delete images that pending or running pods use,
                         looked up through the Kubernetes API.       (now: %t)
  --namespace=NS         namespace of those pods (default: the kubeconfig's
                         or the pod's own namespace).
  --kubeconfig=FILE      kubeconfig file (default: $KUBECONFIG, in-cluster
                         credentials, then ~/.kube/config).

Running:
  --delete               delete for real (default: dry run).         (now: %t)
  --workers=N            parallel registry requests.                 (now: %d)
  --json                 print the report as JSON instead of a table.
  --image-prefix=PREFIX  image prefix, registry host included.       (now: %q)
  --insecure-registry=HOST[,HOST]
                         registry hosts reached over plain HTTP.     (now: %q)

Every flag defaults to an environment variable, so the Helm CronJob and the
in-service schedule (BINDERBUILD_GC_SCHEDULE, e.g. @daily) take the same
settings: BINDERBUILD_GC_MAX_AGE, BINDERBUILD_GC_KEEP,
BINDERBUILD_GC_MAX_TOTAL_SIZE, BINDERBUILD_GC_AGGRESSIVE,
BINDERBUILD_GC_PATTERNS (comma list), BINDERBUILD_GC_MIN_AGE,
BINDERBUILD_GC_PROTECT_RUNNING, BINDERBUILD_GC_NAMESPACE, BINDERBUILD_GC_WORKERS,
BINDERBUILD_GC_DELETE, BINDERBUILD_IMAGE_PREFIX,
BINDERBUILD_REGISTRY_INSECURE_HOSTS. --purge has no variable on purpose.
Registry credentials come from the docker config ($DOCKER_CONFIG/config.json).

Examples:
  binderbuild gc --max-age=30d                    # what would go? (dry run)
  binderbuild gc --max-age=30d --keep=1 --delete
  binderbuild gc --max-total-size=500Gi --aggressive=oldest --delete
  binderbuild gc --pattern=ci-2drepos --min-age=0 --delete
  binderbuild gc --max-age=90d --protect-running --json

Exit status: 0 when everything chosen was deleted (or in a dry run), 1 when
some deletions failed (the report lists them; run again to retry), 2 for a
usage error.
`

// gcCommand is `binderbuild gc`: list, plan, and (with --delete) delete.
// It prints the report to stdout and returns a *gc.DeleteError after the
// report when some deletions failed, a usageError for bad flags.
func gcCommand(ctx context.Context, args []string, lookup lookupFunc, stdout, stderr io.Writer) error {
	s, err := gcSettings(lookup)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Func("max-age", "", durationFlag(&s.MaxAge))
	fs.Func("min-age", "", durationFlag(&s.MinAge))
	fs.Func("keep", "", countFlag(&s.Keep))
	fs.Func("workers", "", countFlag(&s.Workers))
	fs.Func("max-total-size", "", func(v string) error { return s.MaxTotalSize.UnmarshalText([]byte(v)) })
	fs.Func("aggressive", "", func(v string) (err error) { s.Aggressive, err = gc.ParseAggressive(v); return })
	var patterns []string
	patternSet := false
	fs.Func("pattern", "", func(v string) error {
		if _, err := regexp.Compile(v); err != nil {
			return err
		}
		patterns, patternSet = append(patterns, v), true
		return nil
	})
	fs.BoolVar(&s.Purge, "purge", false, "")
	confirm := fs.String("confirm-purge", "", "")
	fs.BoolVar(&s.ProtectRunning, "protect-running", s.ProtectRunning, "")
	fs.StringVar(&s.Namespace, "namespace", s.Namespace, "")
	kubeconfig := fs.String("kubeconfig", "", "")
	fs.BoolVar(&s.Delete, "delete", s.Delete, "")
	jsonOut := fs.Bool("json", false, "")
	fs.StringVar(&s.ImagePrefix, "image-prefix", s.ImagePrefix, "")
	var insecure []string
	insecureSet := false
	fs.Func("insecure-registry", "", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				insecure = append(insecure, h)
			}
		}
		insecureSet = true
		return nil
	})

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, gcHelp,
				durationOrOff(s.MaxAge), countOrOff(s.Keep), sizeOrOff(s.MaxTotalSize), s.Aggressive,
				quoteOr(strings.Join(s.Patterns, ","), "none"), quoteOr(s.ImagePrefix, "<image prefix>"), durationOrOff(s.MinAge),
				s.ProtectRunning, s.Delete, s.Workers, s.ImagePrefix, strings.Join(s.InsecureHosts, ","))
			return nil
		}
		return usageError{fmt.Sprintf("gc: %v (see binderbuild gc --help)", err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("gc takes no arguments, got %q (see binderbuild gc --help)", fs.Args())}
	}
	if patternSet {
		s.Patterns = patterns
	}
	if insecureSet {
		s.InsecureHosts = insecure
	}
	s.ConfirmPurge = *confirm
	switch {
	case s.ImagePrefix == "":
		return usageError{"gc: no image prefix: set BINDERBUILD_IMAGE_PREFIX or --image-prefix (e.g. registry.example.com/binder/r2d-)"}
	case *confirm != "" && !s.Purge:
		return usageError{"gc: --confirm-purge without --purge"}
	case s.Purge && *confirm == "":
		return usageError{fmt.Sprintf("gc: --purge deletes every image under %q; confirm with --confirm-purge=<the image prefix, exactly>", s.ImagePrefix)}
	case s.Purge && *confirm != s.ImagePrefix:
		return usageError{fmt.Sprintf("gc: --confirm-purge=%q does not equal the image prefix %q exactly; nothing was deleted", *confirm, s.ImagePrefix)}
	}
	if err := s.Validate(); err != nil {
		return usageError{"gc: " + err.Error()}
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := gc.Config{Log: log}
	if s.ProtectRunning {
		getenv := func(k string) string { v, _ := lookup(k); return v }
		client, ns, err := kubeClient(getenv, *kubeconfig, true, nil)
		if err != nil {
			return fmt.Errorf("gc: --protect-running: %w", err)
		}
		cfg.Pods = gc.NewKubernetesPods(client, cmp.Or(s.Namespace, ns))
	}
	collector, err := gc.New(cfg)
	if err != nil {
		return err
	}
	rep, runErr := collector.Run(ctx, s)
	var derr *gc.DeleteError
	if runErr != nil && !errors.As(runErr, &derr) {
		return fmt.Errorf("gc: %w", runErr)
	}
	write := gc.WriteTable
	if *jsonOut {
		write = gc.WriteJSON
	}
	if err := write(stdout, rep); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("gc: %w", runErr)
	}
	return nil
}

// gcSettings reads the BINDERBUILD_GC_* settings and the service's
// registry (BINDERBUILD_IMAGE_PREFIX, BINDERBUILD_REGISTRY_INSECURE_HOSTS)
// as serve reads them.
func gcSettings(lookup lookupFunc) (gc.Settings, error) {
	var cfg config
	if err := loadSettings(envPrefix, &cfg, lookup); err != nil {
		return gc.Settings{}, err
	}
	s := cfg.gcSettings()
	return s, checkGC(s)
}

// gcSettings are the BINDERBUILD_GC_* settings in the service's registry.
func (c config) gcSettings() gc.Settings {
	s := c.GC
	s.ImagePrefix, s.InsecureHosts = strings.TrimSpace(c.ImagePrefix), c.RegistryInsecureHosts
	return s
}

// checkGC refuses negative gc settings, naming the variable; gc's
// Validate checks the rest once the image prefix is known.
func checkGC(s gc.Settings) error {
	for _, c := range []struct {
		name  string
		value int64
		text  string
	}{
		{"KEEP", int64(s.Keep), strconv.Itoa(s.Keep)},
		{"WORKERS", int64(s.Workers), strconv.Itoa(s.Workers)},
		{"MAX_AGE", int64(s.MaxAge), s.MaxAge.String()},
		{"MIN_AGE", int64(s.MinAge), s.MinAge.String()},
	} {
		if c.value < 0 {
			return fmt.Errorf("invalid %s_GC_%s=%s: must not be negative", envPrefix, c.name, c.text)
		}
	}
	return nil
}

// durationFlag parses a units.ParseDuration flag into d.
func durationFlag(d *time.Duration) func(string) error {
	return func(v string) (err error) {
		*d, err = units.ParseDuration(v)
		return err
	}
}

// countFlag parses a non-negative integer flag into n.
func countFlag(n *int) func(string) error {
	return func(v string) error {
		i, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || i < 0 {
			return errors.New("want a whole number, 0 or more")
		}
		*n = i
		return nil
	}
}

func durationOrOff(d time.Duration) string {
	if d == 0 {
		return "0, off"
	}
	return units.FormatDuration(d)
}

func countOrOff(n int) string {
	if n == 0 {
		return "0, off"
	}
	return strconv.Itoa(n)
}

func sizeOrOff(n units.Bytes) string {
	if n == 0 {
		return "0, off"
	}
	return n.String()
}

func quoteOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return strconv.Quote(s)
}
