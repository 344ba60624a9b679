package upgrades

import (
	"context"
	"testing"
	"time"
)

// TestScheduler runs Execute from the in-service schedule: the
// configuration comes from a clone of the repository; a dry run by default.
func TestScheduler(t *testing.T) {
	if _, err := NewScheduler(Settings{Schedule: "@daily", MaxWait: time.Minute}, nil); err == nil ||
		err.Error() != "BINDERBUILD_UPGRADES_SCHEDULE needs BINDERBUILD_UPGRADES_REPO (owner/name of the deployment repository)" {
		t.Errorf("schedule without a repository: %v", err)
	}
	if _, err := NewScheduler(Settings{Schedule: "sometimes", Repo: deployRepo}, nil); err == nil {
		t.Error("a bad schedule was accepted")
	}
	f := newFixture(t)
	s := Settings{Schedule: "@hourly", Repo: deployRepo, APIURL: f.gh.URL, Auth: GitHubAuth{Token: token}}
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no registry credentials
	sched, err := NewScheduler(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	due := make(chan time.Time)
	close(due)
	sched.after = func(time.Duration) <-chan time.Time { return due }
	reports := make(chan Report, 1)
	sched.done = func(rep Report, err error) {
		if err != nil {
			t.Errorf("scheduled run: %v", err)
		}
		reports <- rep
		cancel()
	}
	if err := sched.Run(ctx); err != nil {
		t.Fatal(err)
	}
	wantSummary(t, <-reports,
		"repo2docker would update 2024.07.0→2024.08.0",
		"docker-dind would update 27.3.1-dind→27.10.0-dind",
		"jupyterhub would update 3.3.8→4.0.0")
}
