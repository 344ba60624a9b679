package upgrades

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-github/v89/github"
)

// maxCompareCommits is the most commits whose merged pull requests are
// listed; GitHub's compare answers at most 250, and a longer list helps
// nobody review a bump.
const maxCompareCommits = 100

// proposal is the pull request of one dependency.
type proposal struct {
	repo   string // "owner/name" receiving the pull request
	base   string
	head   string // "owner:branch"
	title  string
	body   string
	draft  bool
	labels []string
	// reviewers and teams are requested on creation.
	reviewers, teams []string
}

// Pull request outcomes.
const (
	Opened     = "opened"
	Updated    = "updated"
	Unchanged  = "unchanged"
	KeptClosed = "kept closed"
	Closed     = "closed"
)

// existing returns the open pull request of p's branch, if any, else the
// closed one with p's title (the same version): a person closed it, and
// it is not reopened.
func (g *GitHub) existing(ctx context.Context, p proposal) (open, closed *github.PullRequest, err error) {
	prs, err := g.pulls(ctx, p.repo, p.head, p.base, "all")
	if err != nil {
		return nil, nil, err
	}
	if len(prs) > 0 && prs[0].GetState() == "open" {
		return prs[0], nil, nil
	}
	for _, pr := range prs {
		if pr.GetTitle() == p.title {
			return nil, pr, nil
		}
	}
	return nil, nil, nil
}

// propose opens the pull request, or updates the open one of its branch in
// place. push pushes the branch and reports whether it moved.
func (g *GitHub) propose(ctx context.Context, p proposal, push func() (bool, error)) (string, *github.PullRequest, error) {
	prs, err := g.pulls(ctx, p.repo, p.head, p.base, "open")
	if err != nil {
		return "", nil, err
	}
	if len(prs) > 0 {
		return g.update(ctx, p, prs[0], push)
	}
	if _, err := push(); err != nil {
		return "", nil, err
	}
	owner, name, _ := strings.Cut(p.repo, "/")
	pr, _, err := g.api.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
		Title: &p.title, Head: &p.head, Base: &p.base, Body: &p.body, Draft: &p.draft,
	})
	if err != nil {
		return "", nil, fmt.Errorf("open pull request: %w", describe(err))
	}
	if len(p.labels) > 0 {
		if _, _, err := g.api.Issues.AddLabelsToIssue(ctx, owner, name, pr.GetNumber(), p.labels); err != nil {
			return Opened, pr, fmt.Errorf("label pull request #%d: %w", pr.GetNumber(), describe(err))
		}
	}
	if len(p.reviewers)+len(p.teams) > 0 {
		req := github.ReviewersRequest{Reviewers: p.reviewers, TeamReviewers: p.teams}
		if _, _, err := g.api.PullRequests.RequestReviewers(ctx, owner, name, pr.GetNumber(), req); err != nil {
			return Opened, pr, fmt.Errorf("request reviewers of pull request #%d: %w", pr.GetNumber(), describe(err))
		}
	}
	return Opened, pr, nil
}

// update force-pushes the branch and rewrites the title and body of an
// open pull request, when they changed.
func (g *GitHub) update(ctx context.Context, p proposal, pr *github.PullRequest, push func() (bool, error)) (string, *github.PullRequest, error) {
	moved, err := push()
	if err != nil {
		return "", nil, err
	}
	if pr.GetTitle() == p.title && pr.GetBody() == p.body {
		if moved {
			return Updated, pr, nil
		}
		return Unchanged, pr, nil
	}
	owner, name, _ := strings.Cut(p.repo, "/")
	edited, _, err := g.api.PullRequests.Edit(ctx, owner, name, pr.GetNumber(), &github.PullRequest{Title: &p.title, Body: &p.body})
	if err != nil {
		return "", nil, fmt.Errorf("update pull request #%d: %w", pr.GetNumber(), describe(err))
	}
	return Updated, edited, nil
}

// closeStale closes the open pull requests of a branch whose dependency is
// current already, saying why.
func (g *GitHub) closeStale(ctx context.Context, repo, head, base, comment string) ([]*github.PullRequest, error) {
	prs, err := g.pulls(ctx, repo, head, base, "open")
	if err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(repo, "/")
	for _, pr := range prs {
		if _, _, err := g.api.Issues.CreateComment(ctx, owner, name, pr.GetNumber(), &github.IssueComment{Body: &comment}); err != nil {
			return nil, fmt.Errorf("comment on pull request #%d: %w", pr.GetNumber(), describe(err))
		}
		if _, _, err := g.api.PullRequests.Edit(ctx, owner, name, pr.GetNumber(), &github.PullRequest{State: github.Ptr("closed")}); err != nil {
			return nil, fmt.Errorf("close pull request #%d: %w", pr.GetNumber(), describe(err))
		}
	}
	return prs, nil
}

// pulls lists the pull requests from head into base, newest first.
func (g *GitHub) pulls(ctx context.Context, repo, head, base, state string) ([]*github.PullRequest, error) {
	owner, name, _ := strings.Cut(repo, "/")
	prs, _, err := g.api.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{
		State: state, Head: head, Base: base, Sort: "created", Direction: "desc",
		ListOptions: github.ListOptions{PerPage: 100},
	})
	if err != nil {
		return nil, fmt.Errorf("list pull requests of %s: %w", head, describe(err))
	}
	return prs, nil
}

// changes are the source changes between two versions.
type changes struct {
	// url is the compare page.
	url string
	// total is the number of commits; pulls are listed only up to
	// maxCompareCommits.
	total int
	// pulls are the merged pull requests, "owner/name#N title".
	pulls []string
}

var (
	mergeCommit  = regexp.MustCompile(`^Merge pull request #(\d+) from \S+\s*\n\s*\n(.*)`)
	squashCommit = regexp.MustCompile(`^(.*) \(#(\d+)\)$`)
)

// compare reads the commits between two refs of the source repository.
func (g *GitHub) compare(ctx context.Context, repo, oldRef, newRef string) (changes, error) {
	owner, name, _ := strings.Cut(repo, "/")
	cmp, _, err := g.api.Repositories.CompareCommits(ctx, owner, name, oldRef, newRef, &github.ListOptions{PerPage: maxCompareCommits})
	if err != nil {
		return changes{}, fmt.Errorf("compare %s %s...%s: %w", repo, oldRef, newRef, describe(err))
	}
	ch := changes{url: cmp.GetHTMLURL(), total: cmp.GetTotalCommits()}
	if ch.total > maxCompareCommits {
		return ch, nil
	}
	for _, c := range cmp.Commits {
		msg := c.GetCommit().GetMessage()
		first, _, _ := strings.Cut(msg, "\n")
		if m := mergeCommit.FindStringSubmatch(msg); m != nil {
			title, _, _ := strings.Cut(m[2], "\n")
			ch.pulls = append(ch.pulls, repo+"#"+m[1]+" "+strings.TrimSpace(title))
		} else if m := squashCommit.FindStringSubmatch(first); m != nil {
			ch.pulls = append(ch.pulls, repo+"#"+m[2]+" "+m[1])
		}
	}
	return ch, nil
}
