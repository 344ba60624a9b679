package launcher_test

import (
	"regexp"
	"testing"

	"github.com/binderbuild/binderbuild/launcher"
)

func TestUniqueName(t *testing.T) {
	tests := []struct{ repo, prefix string }{
		{"https://github.com/minrk/binder-example.git", "minrk-binder-example"},
		{"https://github.com/Org/Repo", "org-repo"},
		{"git@github.com:jupyterhub/binderhub", "jupyterhub-binderhub"},
		{"https://gitlab.com/group/sub/project.git/", "group-sub-project"},
		{"https://github.com/a-very-long-organisation-name/with-a-very-long-repository-name", "a-very-long-org-repository-name"},
		{"https://example.org/", ""},
		{"::not a url", ""},
	}
	for _, tc := range tests {
		got := launcher.UniqueName(tc.repo)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.prefix) + `-[a-z0-9]{8}$`).MatchString(got) {
			t.Errorf("UniqueName(%q) = %q, want %s-<8 of [a-z0-9]>", tc.repo, got, tc.prefix)
		}
	}
	if a, b := launcher.UniqueName("https://github.com/o/r"), launcher.UniqueName("https://github.com/o/r"); a == b {
		t.Errorf("two UniqueName calls both gave %q", a)
	}
}
