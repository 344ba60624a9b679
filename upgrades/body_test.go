package upgrades

import (
	"strings"
	"testing"
)

func TestGitRef(t *testing.T) {
	d := Dependency{TagPrefix: "v"}
	for tag, want := range map[string]string{
		"27.3.1-dind":                   "v27.3.1",
		"2024.07.0":                     "v2024.07.0",
		"2024.07.0-52.g5a3f2b1":         "5a3f2b1",
		"4.1.0-0.dev.git.6957.h1a2b3c4": "1a2b3c4",
	} {
		v, ok := ParseVersion(tag, variantOf(tag))
		if got := gitRef(d, v, variantOf(tag)); !ok || got != want {
			t.Errorf("gitRef(%q) = %q, want %q", tag, got, want)
		}
	}
}

// TestBodyOmitsLongChangeLists: past 100 commits the body links the
// comparison without listing pull requests.
func TestBodyOmitsLongChangeLists(t *testing.T) {
	d := Dependency{Name: "repo2docker", File: "values.yaml", Path: "image"}
	body := Body(d, Result{Old: "2023.06.0", New: "2024.07.0"}, &changes{url: "https://github.com/jupyterhub/repo2docker/compare/2023.06.0...2024.07.0", total: 240})
	want := "\nChanges: https://github.com/jupyterhub/repo2docker/compare/2023.06.0...2024.07.0 (240 commits)\n\nMerged pull requests are not listed: more than 100 commits.\n"
	if !strings.Contains(body, want) {
		t.Errorf("body:\n%s\nlacks\n%s", body, want)
	}
}
