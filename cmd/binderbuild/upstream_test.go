package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestUpstreamConfig reads the git-credential and upstream-bound settings
// as the binary does: names, defaults, and that the API token is not the
// git credentials.
func TestUpstreamConfig(t *testing.T) {
	env := testEnv{"BINDERBUILD_GITHUB_TOKEN": "api-token"}
	cfg, err := loadConfig(env.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GitHubConfig.GitCredentials != "" || cfg.GitLabConfig.GitCredentials != "" {
		t.Errorf("git credentials = %q, %q by default, want none", cfg.GitHubConfig.GitCredentials, cfg.GitLabConfig.GitCredentials)
	}
	if cfg.MaxConcurrentLookups != 16 || cfg.LookupQueueTimeout != 10*time.Second ||
		cfg.HubMaxConcurrentChecks != 8 || cfg.HubCheckQueueTimeout != 5*time.Second {
		t.Errorf("bounds = %d, %s, %d, %s; want 16, 10s, 8, 5s", cfg.MaxConcurrentLookups, cfg.LookupQueueTimeout,
			cfg.HubMaxConcurrentChecks, cfg.HubCheckQueueTimeout)
	}
	if cfg.FallbackDelay != 10*time.Second {
		t.Errorf("FallbackDelay = %s, want upstream's 10s", cfg.FallbackDelay)
	}

	env.set("BINDERBUILD_GITHUB_GIT_CREDENTIALS", `username=gh\npassword=x`)
	env.set("BINDERBUILD_GITLAB_GIT_CREDENTIALS", `username=binderhub\npassword=gl`)
	env.set("BINDERBUILD_MAX_CONCURRENT_LOOKUPS", "4")
	env.set("BINDERBUILD_LOOKUP_QUEUE_TIMEOUT", "1s")
	env.set("BINDERBUILD_HUB_MAX_CONCURRENT_CHECKS", "2")
	env.set("BINDERBUILD_HUB_CHECK_QUEUE_TIMEOUT", "0s")
	if cfg, err = loadConfig(env.lookup); err != nil {
		t.Fatal(err)
	}
	if cfg.GitHubConfig.GitCredentials != `username=gh\npassword=x` || cfg.GitLabConfig.GitCredentials != `username=binderhub\npassword=gl` {
		t.Errorf("git credentials = %q, %q", cfg.GitHubConfig.GitCredentials, cfg.GitLabConfig.GitCredentials)
	}
	if cfg.MaxConcurrentLookups != 4 || cfg.LookupQueueTimeout != time.Second ||
		cfg.HubMaxConcurrentChecks != 2 || cfg.HubCheckQueueTimeout != 0 {
		t.Errorf("bounds = %d, %s, %d, %s; want 4, 1s, 2, 0s", cfg.MaxConcurrentLookups, cfg.LookupQueueTimeout,
			cfg.HubMaxConcurrentChecks, cfg.HubCheckQueueTimeout)
	}
}

// TestServeBoundsLookups: through the real wiring, a lookup beyond
// BINDERBUILD_MAX_CONCURRENT_LOOKUPS fails with a clear event, and the
// lookup of a client that leaves is cancelled upstream.
func TestServeBoundsLookups(t *testing.T) {
	arrived := make(chan string, 10)
	cancelled := make(chan string, 10)
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		<-r.Context().Done() // never answers
		cancelled <- r.URL.Path
	}))
	t.Cleanup(gh.Close)
	env := newFixture(t).env
	env.set("BINDERBUILD_GITHUB_API_URL", gh.URL)
	env.set("BINDERBUILD_MAX_CONCURRENT_LOOKUPS", "1")
	env.set("BINDERBUILD_LOOKUP_QUEUE_TIMEOUT", "1ns")
	base := serveT(t, env)

	ctx, leave := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/build/gh/org/slow/HEAD?build_only=true", nil)
	req.Header.Set("Accept", "text/event-stream")
	first := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		first <- err
	}()
	if got := <-arrived; got != "/repos/org/slow/commits/HEAD" {
		t.Fatalf("first upstream request %s, want the commits of org/slow", got)
	}

	got := stream(t, base+"/build/gh/org/other/HEAD?build_only=true", "text/event-stream")
	want := "data: " + `{"phase": "failed", "message": "Error resolving ref for gh:org/other/HEAD: too many repository lookups are in progress, please try again in a minute\n"}` + "\n\n"
	if got != want {
		t.Errorf("lookup beyond the limit:\n%q\nwant\n%q", got, want)
	}

	leave()
	<-first
	if got := <-cancelled; got != "/repos/org/slow/commits/HEAD" {
		t.Errorf("cancelled upstream request %s, want the commits of org/slow", got)
	}
}
