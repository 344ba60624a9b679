package main

import (
	"fmt"
	"slices"
	"testing"
)

func TestUnusedSettings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config
		environ []string
		want    []string // name: reason
	}{
		{"all used", config{}, []string{"BINDERBUILD_IMAGE_PREFIX=quay.io/x/", "BINDERBUILD_BUILD_RESOURCES={}", "BINDERBUILD_GITHUB_CLIENT_ID=id", "BINDERBUILD_REPO_PROVIDERS=gh,git", "HOME=/root", "GITHUB_ACCESS_TOKEN=t"}, nil},
		{"unknown and misspelt", config{}, []string{"BINDERBUILD_IMAGE_PREFIXX=a", "BINDERBUILD_REPO_PROVIDER=gh,git", "BINDERBUILD_TOKEN=t"}, []string{
			"BINDERBUILD_IMAGE_PREFIXX: not a setting of binderbuild serve (see binderbuild serve --help)",
			"BINDERBUILD_REPO_PROVIDER: not a setting of binderbuild serve (see binderbuild serve --help)",
			"BINDERBUILD_TOKEN: not a setting of binderbuild serve (see binderbuild serve --help)",
		}},
		{"upgrade bot without its schedule", config{}, []string{"BINDERBUILD_UPGRADES_REPO=o/r"}, []string{
			"BINDERBUILD_UPGRADES_REPO: BINDERBUILD_UPGRADES_SCHEDULE is not set: the service runs no upgrade bot",
		}},
		{"upgrade bot with its schedule", config{}, []string{"BINDERBUILD_UPGRADES_REPO=o/r", "BINDERBUILD_UPGRADES_SCHEDULE=@daily"}, nil},
		{"needs another setting", config{}, []string{"BINDERBUILD_EVENTS_URL=https://events.example.org", "BINDERBUILD_EVENTS_FILE=/tmp/e", "BINDERBUILD_AUTH_TOKENS_FILE=/t", "BINDERBUILD_GC_MAX_AGE=30d"}, []string{
			"BINDERBUILD_AUTH_TOKENS_FILE: BINDERBUILD_AUTH is not tokens",
			"BINDERBUILD_EVENTS_FILE: BINDERBUILD_EVENTS_SINK is not file",
			"BINDERBUILD_EVENTS_URL: BINDERBUILD_EVENTS_SINK is not http",
			"BINDERBUILD_GC_MAX_AGE: BINDERBUILD_GC_SCHEDULE is not set: the service runs no registry gc",
		}},
		{"used with the other setting", func() config {
			var c config
			c.EventsSink, c.Auth = "http", "tokens"
			return c
		}(), []string{"BINDERBUILD_EVENTS_URL=https://events.example.org", "BINDERBUILD_AUTH_TOKENS_FILE=/t", "BINDERBUILD_GC_SCHEDULE=@daily", "BINDERBUILD_GC_MAX_AGE=30d"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range unusedSettings(tc.cfg, tc.environ) {
				got = append(got, fmt.Sprintf("%s: %s", s.name, s.reason))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("unusedSettings = %q, want %q", got, tc.want)
			}
		})
	}
}
