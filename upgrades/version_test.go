package upgrades

import (
	"regexp"
	"testing"
)

// repo2dockerTags mixes calendar releases, dev builds, a pre-release and
// moving tags, as quay.io/jupyterhub/repo2docker does.
var repo2dockerTags = []string{"latest", "main", "2023.06.0", "2024.07.0", "2024.07.0-52.g5a3f2b1",
	"2024.07.0-9.gabcdef0", "2024.10.0rc1", "2024.08.0-beta.1", "2024.03.0", "2022.10.0", "2024.07.0-120.g0123456"}

func TestLatest(t *testing.T) {
	cur := func(tag string) Version {
		v, ok := ParseVersion(tag, variantOf(tag))
		if !ok {
			t.Fatalf("ParseVersion(%q) not ok", tag)
		}
		return v
	}
	dind := []string{"latest", "dind", "27", "27-dind", "27.3-dind", "27.3.1-dind", "27.4.0-dind", "27.10.0-dind",
		"28.0.0-rc.1-dind", "27.5.0", "27.11.0-cli", "27.9.9-dind-rootless"}
	charts := []string{"3.3.8", "4.0.0", "4.1.0-0.dev.git.6957.h1a2b3c4", "4.0.1-0.dev.git.6900.hfedcba9", "3.10.0", "4.0.0-beta.2"}
	tests := []struct {
		name, current string
		tags          []string
		prerelease    bool
		filter        string
		want          string
	}{
		{"calendar, stable only", "2024.03.0", repo2dockerTags, false, "", "2024.07.0"},
		{"calendar with dev builds", "2024.03.0", repo2dockerTags, true, "", "2024.08.0-beta.1"},
		{"dev builds sort by distance", "2024.07.0-9.gabcdef0", []string{"2024.07.0-52.g5a3f2b1", "2024.07.0-120.g0123456", "2024.07.0"}, true, "", "2024.07.0-120.g0123456"},
		{"variant kept, numbers compared as numbers", "27.3.1-dind", dind, false, "", "27.10.0-dind"},
		{"tags filter", "27.3.1-dind", dind, false, `^27\.4\.\d+-dind$`, "27.4.0-dind"},
		{"semver charts", "3.3.8", charts, false, "", "4.0.0"},
		{"chart dev versions", "3.3.8", charts, true, "", "4.1.0-0.dev.git.6957.h1a2b3c4"},
		{"nothing newer", "4.0.0", charts, false, "", "4.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var filter *regexp.Regexp
			if tc.filter != "" {
				filter = regexp.MustCompile(tc.filter)
			}
			got, ok := Latest(tc.tags, cur(tc.current), variantOf(tc.current), tc.prerelease, filter)
			if !ok || got.Tag != tc.want {
				t.Errorf("Latest(%s) = %q, %t; want %q", tc.current, got.Tag, ok, tc.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		tag     string
		ok      bool
		stable  bool
		commit  string
		variant string
	}{
		{"2024.07.0", true, true, "", ""},
		{"v1.2.3", true, true, "", ""},
		{"2024.07.0-52.g5a3f2b1", true, false, "5a3f2b1", ""},
		{"4.1.0-0.dev.git.6957.h1a2b3c4", true, false, "1a2b3c4", ""},
		{"27.3.1-dind", true, true, "", "dind"},
		{"latest", false, false, "", ""},
		{"1.2.3-", false, false, "", ""},
		{"1..2", false, false, "", ""},
		{"99999999999.0.0", false, false, "", ""},
	}
	for _, tc := range tests {
		v, ok := ParseVersion(tc.tag, variantOf(tc.tag))
		if ok != tc.ok || (ok && (v.Stable() != tc.stable || v.Commit != tc.commit)) || variantOf(tc.tag) != tc.variant {
			t.Errorf("ParseVersion(%q) = %+v, %t (variant %q); want ok %t, stable %t, commit %q, variant %q",
				tc.tag, v, ok, variantOf(tc.tag), tc.ok, tc.stable, tc.commit, tc.variant)
		}
	}
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.0-3.gabcdef0", "1.0.1"}
	for i := 1; i < len(order); i++ {
		a, _ := ParseVersion(order[i-1], "")
		b, _ := ParseVersion(order[i], "")
		if a.Compare(b) >= 0 || b.Compare(a) <= 0 {
			t.Errorf("%s should sort before %s", order[i-1], order[i])
		}
	}
}
