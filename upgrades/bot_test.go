package upgrades

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/testgithub"
)

const footer = "\n---\nOpened by `binderbuild upgrades`; the next run updates this pull request in place.\n"

func (f *fixture) repo2dockerBody(old, new string, compare bool) string {
	b := "Bumps repo2docker from `" + old + "` to `" + new + "` in `config/prod.values.yaml` (`binderhub-service.config.KubernetesBuildExecutor.build_image`).\n\n" +
		"| | version | appVersion |\n|---|---|---|\n" +
		"| before | " + old + " | — |\n| after | " + new + " | — |\n"
	if compare {
		b += "\nChanges: " + f.gh.URL + "jupyterhub/repo2docker/compare/" + old + "..." + new + " (3 commits)\n" +
			"\nMerged pull requests:\n- jupyterhub/repo2docker#1380 Pin conda to 24.7\n- jupyterhub/repo2docker#1391 Support Python 3.13\n"
	}
	return b + "\nChangelog: https://repo2docker.readthedocs.io/en/latest/changelog.html\n" + footer
}

const dindBody = "Bumps docker-dind from `27.3.1-dind` to `27.10.0-dind` in `config/prod.values.yaml` (`binderhub-service.dockerApi.image.tag`).\n\n" +
	"| | version | appVersion |\n|---|---|---|\n| before | 27.3.1-dind | — |\n| after | 27.10.0-dind | — |\n" + footer

const hubBody = "Bumps jupyterhub from `3.3.8` to `4.0.0` in `chart/Chart.yaml` (chart dependency `jupyterhub`).\n\n" +
	"| | version | appVersion |\n|---|---|---|\n| before | 3.3.8 | 4.1.5 |\n| after | 4.0.0 | 5.2.1 |\n" + footer

const dindDiff = `--- a/config/prod.values.yaml
+++ b/config/prod.values.yaml
@@ -10,7 +10,7 @@
     BinderHub:
       image_prefix: 'registry.example.org/binder/r2d-'
   dockerApi:
-    image: {name: docker.io/library/docker, tag: 27.3.1-dind}  # flow style
+    image: {name: docker.io/library/docker, tag: 27.10.0-dind}  # flow style
     resources: *resources
   buildPodsRegistryCredentials:
     server: https://registry.example.org
`

// summary is "name status old→new" per result, for exact comparisons.
func summary(rep Report) []string {
	var out []string
	for _, r := range rep.Results {
		s := r.Name + " " + r.Status
		if r.New != "" {
			s += " " + r.Old + "→" + r.New
		}
		if r.Error != "" {
			s += ": " + r.Error
		}
		out = append(out, s)
	}
	return out
}

func wantSummary(t *testing.T, rep Report, want ...string) {
	t.Helper()
	if got := summary(rep); !slices.Equal(got, want) {
		t.Errorf("results:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDryRunChangesNothing runs without --apply: it reports every bump and
// its diff, and writes nothing to GitHub or the git server.
func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	rep := f.run(t, f.bot(t, token, false))
	wantSummary(t, rep,
		"repo2docker would update 2024.07.0→2024.08.0",
		"docker-dind would update 27.3.1-dind→27.10.0-dind",
		"jupyterhub would update 3.3.8→4.0.0")
	if got := rep.Results[1].Diff; got != dindDiff {
		t.Errorf("docker-dind diff:\n%s\nwant\n%s", got, dindDiff)
	}
	if got := rep.Results[2].NewAppVersion; got != "5.2.1" {
		t.Errorf("jupyterhub new appVersion = %q, want 5.2.1", got)
	}
	var text strings.Builder
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"my-org/my-hub-deploy (dry run: nothing was pushed; run with --apply to open pull requests)\n\nrepo2docker (config/prod.values.yaml): would update, 2024.07.0 → 2024.08.0\n",
		"\ndocker-dind (config/prod.values.yaml): would update, 27.3.1-dind → 27.10.0-dind\n" + dindDiff,
		"\njupyterhub (chart/Chart.yaml): would update, 3.3.8 → 4.0.0 (appVersion 4.1.5 → 5.2.1)\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("dry-run report lacks\n%s\nreport:\n%s", want, text.String())
		}
	}
	if !rep.DryRun || rep.Base != "main" {
		t.Errorf("report dry_run %t base %q, want true, main", rep.DryRun, rep.Base)
	}
	f.gh.Lock()
	for _, r := range f.gh.Requests {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("dry run sent %s", r)
		}
	}
	f.gh.Unlock()
	if got := f.branches(t, deployRepo); !slices.Equal(got, []string{"main"}) {
		t.Errorf("branches after a dry run: %q, want only main", got)
	}
}

// TestPullRequestLifecycle: the first run opens one pull request per
// dependency; a re-run changes nothing; a newer release updates the same
// pull request; a pull request a person closed stays closed; the
// deployment catching up closes the stale one.
func TestPullRequestLifecycle(t *testing.T) {
	f := newFixture(t)
	bot := f.bot(t, token, true)

	rep := f.run(t, bot)
	wantSummary(t, rep,
		"repo2docker opened 2024.07.0→2024.08.0",
		"docker-dind opened 27.3.1-dind→27.10.0-dind",
		"jupyterhub opened 3.3.8→4.0.0")
	prs := f.gh.PullsOf(deployRepo)
	want := []testgithub.PR{
		{Number: 1, Title: "repo2docker: 2024.07.0 → 2024.08.0", Body: f.repo2dockerBody("2024.07.0", "2024.08.0", true),
			Head: "my-org:binderbuild-upgrades/repo2docker", Base: "main", State: "open",
			Labels: []string{"dependencies", "repo2docker"}, Reviewers: []string{"alice"}, Teams: []string{"binder-team"}, CreatedBy: "binder-bot"},
		{Number: 2, Title: "docker-dind: 27.3.1-dind → 27.10.0-dind", Body: dindBody, Head: "my-org:binderbuild-upgrades/docker-dind", Base: "main", State: "open", CreatedBy: "binder-bot"},
		{Number: 3, Title: "jupyterhub: 3.3.8 → 4.0.0", Body: hubBody, Head: "my-org:binderbuild-upgrades/jupyterhub", Base: "main", State: "open", CreatedBy: "binder-bot"},
	}
	comparePRs(t, prs, want)
	if rep.Results[0].PullRequest != f.gh.URL+deployRepo+"/pull/1" {
		t.Errorf("pull request URL %q", rep.Results[0].PullRequest)
	}
	// The branches hold the base files with one line changed.
	gotValues := f.branchFile(t, deployRepo, "binderbuild-upgrades/docker-dind", "config/prod.values.yaml")
	if wantValues := strings.Replace(f.values, "tag: 27.3.1-dind}", "tag: 27.10.0-dind}", 1); gotValues != wantValues {
		t.Errorf("docker-dind branch file:\n%s\nwant\n%s", gotValues, wantValues)
	}
	gotChart := f.branchFile(t, deployRepo, "binderbuild-upgrades/jupyterhub", "chart/Chart.yaml")
	if wantChart := strings.Replace(chartYAML, `version: "3.3.8"`, `version: "4.0.0"`, 1); gotChart != wantChart {
		t.Errorf("jupyterhub branch Chart.yaml:\n%s\nwant\n%s", gotChart, wantChart)
	}
	heads := f.git.Git(t, deployRepo, "for-each-ref", "--format=%(objectname)", "refs/heads/binderbuild-upgrades/")

	t.Run("re-run is idempotent", func(t *testing.T) {
		rep := f.run(t, bot)
		wantSummary(t, rep,
			"repo2docker unchanged 2024.07.0→2024.08.0",
			"docker-dind unchanged 27.3.1-dind→27.10.0-dind",
			"jupyterhub unchanged 3.3.8→4.0.0")
		comparePRs(t, f.gh.PullsOf(deployRepo), want)
		if got := f.git.Git(t, deployRepo, "for-each-ref", "--format=%(objectname)", "refs/heads/binderbuild-upgrades/"); got != heads {
			t.Errorf("branches moved on a re-run:\n%s\nwas\n%s", got, heads)
		}
	})

	t.Run("newer release updates the same pull request", func(t *testing.T) {
		f.pushTags(t, "jupyterhub/repo2docker", "2024.09.0")
		rep := f.run(t, bot)
		wantSummary(t, rep,
			"repo2docker updated 2024.07.0→2024.09.0",
			"docker-dind unchanged 27.3.1-dind→27.10.0-dind",
			"jupyterhub unchanged 3.3.8→4.0.0")
		// The fake has no compare data for 2024.07.0...2024.09.0 and
		// answers 404: the body goes without changes.
		want := slices.Clone(want)
		want[0].Title, want[0].Body = "repo2docker: 2024.07.0 → 2024.09.0", f.repo2dockerBody("2024.07.0", "2024.09.0", false)
		comparePRs(t, f.gh.PullsOf(deployRepo), want)
		got := f.branchFile(t, deployRepo, "binderbuild-upgrades/repo2docker", "config/prod.values.yaml")
		if want := strings.Replace(f.values, "repo2docker:2024.07.0", "repo2docker:2024.09.0", 1); got != want {
			t.Errorf("repo2docker branch file:\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("a pull request a person closed stays closed", func(t *testing.T) {
		f.gh.Close(deployRepo, 2)
		for range 2 {
			rep := f.run(t, bot)
			if got := rep.Results[1]; got.Status != KeptClosed || got.PullRequest != f.gh.URL+deployRepo+"/pull/2" {
				t.Errorf("docker-dind after a person closed its pull request: %+v", got)
			}
		}
		if n := len(f.gh.PullsOf(deployRepo)); n != 3 {
			t.Errorf("%d pull requests, want 3: none reopened or duplicated", n)
		}
	})

	t.Run("deployment catching up closes the pull request", func(t *testing.T) {
		f.git.Commit(t, deployRepo, "Bump jupyterhub by hand", map[string]string{
			"chart/Chart.yaml": strings.Replace(chartYAML, `version: "3.3.8"`, `version: "4.0.0"`, 1),
		})
		for i := range 2 {
			rep := f.run(t, bot)
			want := "jupyterhub closed"
			if i == 1 {
				want = "jupyterhub up to date"
			}
			if got := summary(rep)[2]; got != want {
				t.Errorf("run %d: %q, want %q", i+1, got, want)
			}
		}
		pr := f.gh.PullsOf(deployRepo)[2]
		wantComments := []string{"jupyterhub is at 4.0.0 in chart/Chart.yaml now, the latest version: closing this pull request."}
		if pr.State != "closed" || !slices.Equal(pr.Comments, wantComments) {
			t.Errorf("pull request 3: %s, comments %q; want closed with %q", pr.State, pr.Comments, wantComments)
		}
	})
}

func comparePRs(t *testing.T, got, want []testgithub.PR) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d pull requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		g.Comments, w.Comments = nil, nil
		if g.Number != w.Number || g.Title != w.Title || g.Body != w.Body || g.Head != w.Head || g.Base != w.Base ||
			g.State != w.State || g.Draft != w.Draft || !slices.Equal(g.Labels, w.Labels) ||
			!slices.Equal(g.Reviewers, w.Reviewers) || !slices.Equal(g.Teams, w.Teams) || g.CreatedBy != w.CreatedBy {
			t.Errorf("pull request %d:\n%+v\nwant\n%+v", i+1, g, w)
			if g.Body != w.Body {
				t.Errorf("body:\n%s\nwant\n%s", g.Body, w.Body)
			}
		}
	}
}

// TestForkMode pushes the branches to the bot's fork and opens the pull
// requests from there.
func TestForkMode(t *testing.T) {
	f := newFixture(t)
	bot := f.bot(t, token, true)
	bot.Fork = true
	rep := f.run(t, bot)
	wantSummary(t, rep,
		"repo2docker opened 2024.07.0→2024.08.0",
		"docker-dind opened 27.3.1-dind→27.10.0-dind",
		"jupyterhub opened 3.3.8→4.0.0")
	for _, pr := range f.gh.PullsOf(deployRepo) {
		if !strings.HasPrefix(pr.Head, "binder-bot:binderbuild-upgrades/") {
			t.Errorf("pull request head %q, want the fork binder-bot", pr.Head)
		}
	}
	if got := f.branches(t, deployRepo); !slices.Equal(got, []string{"main"}) {
		t.Errorf("branches of %s: %q, want only main", deployRepo, got)
	}
	if got := f.branches(t, "binder-bot/my-hub-deploy"); len(got) != 4 {
		t.Errorf("branches of the fork: %q, want main and 3 upgrade branches", got)
	}
	rep = f.run(t, bot)
	if got := summary(rep)[1]; got != "docker-dind unchanged 27.3.1-dind→27.10.0-dind" {
		t.Errorf("re-run in fork mode: %q", got)
	}
}

// TestGitHubApp authenticates as a GitHub App: a JWT buys an installation
// token, which pushes and opens the pull requests.
func TestGitHubApp(t *testing.T) {
	f := newFixture(t)
	key, pub := testgithub.GenerateAppKey(t)
	f.gh.AppID, f.gh.AppKey = 4242, pub
	gh, err := NewGitHub(t.Context(), f.gh.URL, GitHubAuth{AppID: 4242, AppKey: key}, deployRepo, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bot := &Bot{Sources: f.bot(t, token, true).Sources, GitHub: gh, Apply: true}
	rep := f.run(t, bot)
	if rep.Failures() != 0 {
		t.Fatalf("failures: %q", summary(rep))
	}
	for _, pr := range f.gh.PullsOf(deployRepo) {
		if pr.CreatedBy != "binderbuild-app[bot]" {
			t.Errorf("pull request %d created by %q, want the App's installation", pr.Number, pr.CreatedBy)
		}
	}
	if _, err := NewGitHub(t.Context(), f.gh.URL, GitHubAuth{AppID: 4243, AppKey: key}, deployRepo, time.Minute); err == nil ||
		err.Error() != "GitHub App installation on my-org/my-hub-deploy: GitHub refused the credentials (401) on GET /repos/my-org/my-hub-deploy/installation: A JSON web token could not be decoded" {
		t.Errorf("wrong app id: %v", err)
	}
}

// TestRateLimit waits out a short rate limit and stops at a long one with
// one message, failing every remaining dependency with it.
func TestRateLimit(t *testing.T) {
	f := newFixture(t)
	bot := f.bot(t, token, true)
	f.gh.Lock()
	f.gh.Limited, f.gh.LimitStatus, f.gh.LimitHeader = 1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
	f.gh.Unlock()
	rep := f.run(t, bot)
	if rep.Failures() != 0 {
		t.Fatalf("short rate limit: %q", summary(rep))
	}

	reset := time.Now().Add(time.Hour).Unix()
	f.pushTags(t, "jupyterhub/repo2docker", "2024.09.0")
	co, err := bot.GitHub.Clone(t.Context(), deployRepo, "")
	if err != nil {
		t.Fatal(err)
	}
	cfgData, _ := co.ReadFile(DefaultConfigFile)
	cfg, _ := ParseConfig(cfgData)
	f.gh.Lock()
	f.gh.Limited, f.gh.LimitStatus = 1000, http.StatusForbidden
	f.gh.LimitHeader = http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset, 10)}, "X-Ratelimit-Limit": {"5000"}}
	f.gh.Unlock()
	rep = bot.Run(t.Context(), cfg, co)
	msg := "GitHub rate limit exceeded until " + time.Unix(reset, 0).UTC().Format(time.RFC3339) + ", longer than the 1m0s this run waits; stopping: run again after that"
	wantSummary(t, rep,
		"repo2docker failed 2024.07.0→2024.09.0: repo2docker: list pull requests of my-org:binderbuild-upgrades/repo2docker: "+msg,
		"docker-dind failed: docker-dind: "+msg,
		"jupyterhub failed: jupyterhub: "+msg)
	f.gh.Lock()
	left := f.gh.Limited
	f.gh.Unlock()
	if left != 999 {
		t.Errorf("%d requests were refused, want 1: the run stops at a long rate limit", 1000-left)
	}
}
