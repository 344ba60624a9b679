package upgrades

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// propose verifies the bump when asked, then pushes its branch and opens
// or updates its pull request.
func (b *Bot) propose(ctx context.Context, cfg *Config, d Dependency, bp *bump, t *target, res *Result) error {
	p := proposal{
		repo: t.repo, base: t.base, head: t.owner + ":" + d.Branch(),
		title:  Title(d.Name, bp.old.Tag, bp.new.Tag),
		labels: d.Labels, reviewers: d.Reviewers, teams: d.TeamReviewers,
	}
	// A pull request a person closed for this version stays closed: no
	// canary builds for it either.
	open, closed, err := b.GitHub.existing(ctx, p)
	if err != nil || closed != nil {
		if closed != nil {
			res.Status, res.PullRequest = KeptClosed, closed.GetHTMLURL()
		}
		return err
	}
	var ch *changes
	if d.GitHub != "" {
		// Without a comparison (tags named otherwise, a private source) the
		// pull request is still worth opening; a rate limit is not.
		c, err := b.GitHub.compare(ctx, d.GitHub, gitRef(d, bp.old, bp.variant), gitRef(d, bp.new, bp.variant))
		var rl *RateLimitError
		if errors.As(err, &rl) {
			return err
		}
		if err == nil {
			ch = &c
		}
	}
	switch {
	case b.Verifier != nil && d.Verify && open != nil && open.GetTitle() == p.title:
		// This version was verified when its pull request was opened:
		// keep those results rather than rebuild (and rewrite) each run.
		p.body = open.GetBody()
	case b.Verifier != nil && d.Verify:
		res.Canaries = b.Verifier.Verify(ctx, cfg.Canaries, bp.oldValue, bp.newValue)
		p.draft = anyFailed(res.Canaries)
		fallthrough
	default:
		p.body = Body(d, *res, ch)
	}
	push := func() (bool, error) {
		commit, err := t.co.commit(d.File, bp.edited, p.title+"\n\nBy binderbuild upgrades.\n")
		if err != nil {
			return false, err
		}
		return t.co.push(ctx, t.pushURL, commit, d.Branch())
	}
	status, pr, err := b.GitHub.propose(ctx, p, push)
	if pr != nil {
		res.PullRequest = pr.GetHTMLURL()
	}
	if status != "" {
		res.Status = status
	}
	return err
}

// Title is a bump's pull request title.
func Title(name, old, new string) string { return name + ": " + old + " → " + new }

// Body is the pull request body of a bump: the before/after table, the
// source changes when known, the changelog and the canary builds.
func Body(d Dependency, res Result, ch *changes) string {
	var b strings.Builder
	where := "`" + d.Path + "`"
	if d.isChart() {
		where = "chart dependency `" + d.Chart + "`"
	}
	fmt.Fprintf(&b, "Bumps %s from `%s` to `%s` in `%s` (%s).\n\n", d.Name, res.Old, res.New, d.File, where)
	b.WriteString("| | version | appVersion |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| before | %s | %s |\n", res.Old, orDash(res.OldAppVersion))
	fmt.Fprintf(&b, "| after | %s | %s |\n", res.New, orDash(res.NewAppVersion))
	if ch != nil {
		fmt.Fprintf(&b, "\nChanges: %s (%d commits)\n", ch.url, ch.total)
		switch {
		case ch.total > maxCompareCommits:
			fmt.Fprintf(&b, "\nMerged pull requests are not listed: more than %d commits.\n", maxCompareCommits)
		case len(ch.pulls) > 0:
			b.WriteString("\nMerged pull requests:\n")
			for _, p := range ch.pulls {
				b.WriteString("- " + p + "\n")
			}
		}
	}
	if d.Changelog != "" {
		fmt.Fprintf(&b, "\nChangelog: %s\n", d.Changelog)
	}
	if len(res.Canaries) > 0 {
		b.WriteString("\n" + canaryTable(res.Canaries))
	}
	b.WriteString("\n---\nOpened by `binderbuild upgrades`; the next run updates this pull request in place.\n")
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
