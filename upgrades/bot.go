// Package upgrades keeps a BinderHub-style deployment current: it reads a
// deployment repository's binderbuild-upgrades.yaml, finds the latest
// versions of its dependencies (build image, docker-api image, Helm charts)
// in image registries and Helm repositories, edits only the version's bytes
// in the YAML files, and opens or updates one GitHub pull request per
// dependency, optionally after proving with canary builds on a binderbuild
// service that a new build image still builds.
//
// A Bot run is a dry run unless Bot.Apply is set. Re-runs are idempotent:
// commits are deterministic, an open pull request is updated in place, a
// pull request a person closed is not reopened for the same version.
package upgrades

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"gopkg.in/yaml.v3"
)

// Statuses of a Result besides the pull request outcomes (Opened…).
const (
	UpToDate    = "up to date"
	WouldUpdate = "would update"
	Failed      = "failed"
)

// Files reads files of the deployment repository.
type Files interface {
	ReadFile(name string) ([]byte, error)
}

// Bot runs the upgrades of one configuration.
type Bot struct {
	// Sources lists versions.
	Sources Sources
	// GitHub opens pull requests; required with Apply.
	GitHub *GitHub
	// Verifier, when set, builds canaries with new build images.
	Verifier *Verifier
	// Apply pushes branches and opens, updates or closes pull requests;
	// without it nothing is written anywhere.
	Apply bool
	// Fork pushes to the authenticated user's fork instead of the
	// repository itself.
	Fork bool
	// Progress, when set, gets one line per dependency.
	Progress io.Writer
}

// Report is the outcome of a run.
type Report struct {
	Repository string   `json:"repository"`
	Base       string   `json:"base,omitempty"`
	DryRun     bool     `json:"dry_run"`
	Results    []Result `json:"dependencies"`
}

// Failures counts the dependencies that failed.
func (r Report) Failures() int {
	n := 0
	for _, res := range r.Results {
		if res.Status == Failed {
			n++
		}
	}
	return n
}

// Result is the outcome of one dependency.
type Result struct {
	Name          string `json:"name"`
	File          string `json:"file"`
	Old           string `json:"old,omitempty"`
	New           string `json:"new,omitempty"`
	OldAppVersion string `json:"old_app_version,omitempty"`
	NewAppVersion string `json:"new_app_version,omitempty"`
	// Status is UpToDate, WouldUpdate, Failed or a pull request outcome.
	Status string `json:"status"`
	// PullRequest is the URL of the dependency's pull request, if any.
	PullRequest string `json:"pull_request,omitempty"`
	// Diff is the unified diff of the bump.
	Diff string `json:"diff,omitempty"`
	// Canaries are the verification builds, old and new build image.
	Canaries []Canary `json:"canaries,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// target is where pull requests go and branches are pushed.
type target struct {
	repo    string // "owner/name"
	base    string
	pushURL string
	owner   string // of the pushed branches
	co      *Checkout
}

// Run checks every dependency of cfg. files is the deployment repository
// as read (a *Checkout from Clone, or a local folder); with Apply, the
// base branch is cloned when files is not a *Checkout. One dependency's
// failure never stops the others; a long GitHub rate limit stops the run
// (the remaining dependencies fail with its message).
func (b *Bot) Run(ctx context.Context, cfg *Config, files Files) Report {
	rep := Report{Repository: cfg.Repository, Base: cfg.Base, DryRun: !b.Apply}
	var t *target
	var setupErr error
	if b.Apply {
		t, setupErr = b.target(ctx, cfg, files)
		if t != nil {
			files, rep.Base = t.co, t.base
		}
	}
	for i, d := range cfg.Dependencies {
		res := Result{Name: d.Name, File: d.File}
		err := setupErr
		if err == nil {
			err = b.dependency(ctx, cfg, d, files, t, &res)
		}
		if err != nil {
			res.Status, res.Error = Failed, fmt.Sprintf("%s: %v", d.Name, err)
		}
		rep.Results = append(rep.Results, res)
		b.progress(i+1, len(cfg.Dependencies), res)
		var rl *RateLimitError
		if errors.As(err, &rl) {
			setupErr = rl // every further request would fail too
		}
	}
	return rep
}

func (b *Bot) progress(i, n int, res Result) {
	if b.Progress == nil {
		return
	}
	line := fmt.Sprintf("[%d/%d] %s: %s", i, n, res.Name, res.Status)
	if res.New != "" {
		line += fmt.Sprintf(" (%s → %s)", res.Old, res.New)
	}
	if res.Error != "" {
		line += ": " + res.Error
	}
	fmt.Fprintln(b.Progress, line)
}

// target clones the base branch and finds where to push.
func (b *Bot) target(ctx context.Context, cfg *Config, files Files) (*target, error) {
	if b.GitHub == nil {
		return nil, errors.New("no GitHub client to apply with")
	}
	co, ok := files.(*Checkout)
	if !ok || co.repo != cfg.Repository || (cfg.Base != "" && co.branch != cfg.Base) {
		var err error
		if co, err = b.GitHub.Clone(ctx, cfg.Repository, cfg.Base); err != nil {
			return nil, err
		}
	}
	t := &target{repo: cfg.Repository, base: co.branch, pushURL: co.url, owner: strings.Split(cfg.Repository, "/")[0], co: co}
	if b.Fork {
		fork, err := b.GitHub.Fork(ctx, cfg.Repository)
		if err != nil {
			return nil, err
		}
		t.pushURL, t.owner = fork.GetCloneURL(), fork.GetOwner().GetLogin()
	}
	return t, nil
}

// dependency checks one dependency into res and, with a target, proposes
// its bump.
func (b *Bot) dependency(ctx context.Context, cfg *Config, d Dependency, files Files, t *target, res *Result) error {
	bump, err := b.plan(ctx, d, files)
	if bump != nil {
		res.Old, res.New = bump.old.Tag, bump.new.Tag
		res.OldAppVersion, res.NewAppVersion = bump.oldApp, bump.newApp
		res.Diff = bump.diff
	}
	if err != nil {
		return err
	}
	if bump.new.Tag == "" {
		res.Status = UpToDate
		if t == nil {
			return nil
		}
		comment := fmt.Sprintf("%s is at %s in %s now, the latest version: closing this pull request.", d.Name, bump.old.Tag, d.File)
		closed, err := b.GitHub.closeStale(ctx, t.repo, t.owner+":"+d.Branch(), t.base, comment)
		if len(closed) > 0 {
			res.Status, res.PullRequest = Closed, closed[0].GetHTMLURL()
		}
		return err
	}
	res.Status = WouldUpdate
	if t == nil {
		return nil
	}
	return b.propose(ctx, cfg, d, bump, t, res)
}

// bump is a planned version change.
type bump struct {
	old, new       Version // new.Tag is "" when old is the latest
	variant        string
	oldApp, newApp string
	// oldValue and newValue are the scalar's whole text (image references
	// keep their repository).
	oldValue, newValue string
	edited             []byte
	diff               string
}

// plan reads the deployed version, finds the latest and makes the edit.
func (b *Bot) plan(ctx context.Context, d Dependency, files Files) (*bump, error) {
	data, err := files.ReadFile(d.File)
	if err != nil {
		return nil, fmt.Errorf("read %w", err)
	}
	root, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.File, err)
	}
	node, err := find(root, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.File, err)
	}
	sc, err := locate(data, node)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.File, err)
	}
	prefix, tag, err := splitValue(d, node.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.File, err)
	}
	bp := &bump{variant: variantOf(tag), oldValue: node.Value}
	cur, ok := ParseVersion(tag, bp.variant)
	if !ok {
		return nil, fmt.Errorf("%s: deployed value %q is not a version", d.File, tag)
	}
	bp.old = cur
	rels, err := b.Sources.releases(ctx, d)
	if err != nil {
		return bp, err
	}
	tags := make([]string, len(rels))
	for i, r := range rels {
		tags[i] = r.Tag
	}
	latest, ok := Latest(tags, cur, bp.variant, d.Prerelease, d.tags)
	if !ok {
		return bp, fmt.Errorf("%s lists no version like %q", d.Source, tag)
	}
	if d.isChart() {
		bp.oldApp, _ = b.Sources.appVersion(ctx, d, rels, cur.Tag)
	}
	if latest.Compare(cur) <= 0 {
		return bp, nil
	}
	bp.new = latest
	if d.isChart() {
		if bp.newApp, err = b.Sources.appVersion(ctx, d, rels, latest.Tag); err != nil {
			return bp, fmt.Errorf("appVersion of %s: %w", latest.Tag, err)
		}
	}
	bp.newValue = prefix + latest.Tag
	if bp.edited, err = replace(data, sc, bp.newValue); err != nil {
		return bp, err
	}
	if err := check(bp.edited, d, bp.newValue); err != nil {
		return bp, fmt.Errorf("%s: edit check: %w", d.File, err)
	}
	bp.diff, err = difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(data)), B: difflib.SplitLines(string(bp.edited)),
		FromFile: "a/" + d.File, ToFile: "b/" + d.File, Context: 3,
	})
	return bp, err
}

// find locates the dependency's version node.
func find(root *yaml.Node, d Dependency) (*yaml.Node, error) {
	if d.isChart() {
		return chartDependency(root, d.Chart)
	}
	n, ok := lookup(root, d.Path)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoPath, d.Path)
	}
	return n, nil
}

// check parses the edited file again and reads the new value back.
func check(edited []byte, d Dependency, want string) error {
	root, err := parseYAML(edited)
	if err != nil {
		return err
	}
	n, err := find(root, d)
	if err != nil {
		return err
	}
	if n.Value != want {
		return fmt.Errorf("reads %q, want %q", n.Value, want)
	}
	return nil
}

// splitValue splits an image reference into "repository:" and its tag; a
// bare tag or chart version has no prefix.
func splitValue(d Dependency, value string) (prefix, tag string, err error) {
	if d.isChart() || !strings.Contains(value, "/") {
		return "", value, nil
	}
	if strings.Contains(value, "@") {
		return "", "", fmt.Errorf("image %q is pinned by digest; pin it by tag to have it bumped", value)
	}
	i := strings.LastIndex(value, ":")
	if i < strings.LastIndex(value, "/") {
		return "", "", fmt.Errorf("image %q has no tag", value)
	}
	return value[:i+1], value[i+1:], nil
}

// gitRef is the source repository's ref of a version: its commit for dev
// builds, else its tag (with the variant dropped and the prefix added).
func gitRef(d Dependency, v Version, variant string) string {
	if v.Commit != "" {
		return v.Commit
	}
	tag := v.Tag
	if variant != "" {
		tag = strings.TrimSuffix(tag, "-"+variant)
	}
	return d.TagPrefix + tag
}
