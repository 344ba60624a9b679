package main

import (
	"testing"
	"time"
)

// TestUpstreamConfig reads the git-credential and upstream-bound settings
// as the binary does: names, defaults, and that the API token is not the
// git credentials.
func TestUpstreamConfig(t *testing.T) {
	noEnv := func(string) string { return "" }
	t.Setenv("BINDERBUILD_GITHUB_TOKEN", "api-token")
	cfg, err := loadConfig(noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GithubGitCredentials != "" || cfg.GitlabGitCredentials != "" {
		t.Errorf("git credentials = %q, %q by default, want none", cfg.GithubGitCredentials, cfg.GitlabGitCredentials)
	}
	if cfg.MaxConcurrentLookups != 16 || cfg.LookupQueueTimeout != 10*time.Second ||
		cfg.HubMaxConcurrentChecks != 8 || cfg.HubCheckQueueTimeout != 5*time.Second {
		t.Errorf("bounds = %d, %s, %d, %s; want 16, 10s, 8, 5s", cfg.MaxConcurrentLookups, cfg.LookupQueueTimeout,
			cfg.HubMaxConcurrentChecks, cfg.HubCheckQueueTimeout)
	}

	t.Setenv("BINDERBUILD_GITHUB_GIT_CREDENTIALS", `username=gh\npassword=x`)
	t.Setenv("BINDERBUILD_GITLAB_GIT_CREDENTIALS", `username=binderhub\npassword=gl`)
	t.Setenv("BINDERBUILD_MAX_CONCURRENT_LOOKUPS", "4")
	t.Setenv("BINDERBUILD_LOOKUP_QUEUE_TIMEOUT", "1s")
	t.Setenv("BINDERBUILD_HUB_MAX_CONCURRENT_CHECKS", "2")
	t.Setenv("BINDERBUILD_HUB_CHECK_QUEUE_TIMEOUT", "0s")
	if cfg, err = loadConfig(noEnv); err != nil {
		t.Fatal(err)
	}
	if cfg.GithubGitCredentials != `username=gh\npassword=x` || cfg.GitlabGitCredentials != `username=binderhub\npassword=gl` {
		t.Errorf("git credentials = %q, %q", cfg.GithubGitCredentials, cfg.GitlabGitCredentials)
	}
	if cfg.MaxConcurrentLookups != 4 || cfg.LookupQueueTimeout != time.Second ||
		cfg.HubMaxConcurrentChecks != 2 || cfg.HubCheckQueueTimeout != 0 {
		t.Errorf("bounds = %d, %s, %d, %s; want 4, 1s, 2, 0s", cfg.MaxConcurrentLookups, cfg.LookupQueueTimeout,
			cfg.HubMaxConcurrentChecks, cfg.HubCheckQueueTimeout)
	}
}
