package upgrades

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Version is a release tag read as a version: semver ("4.1.0",
// "v1.2.3-beta.1"), calendar versions ("2024.07.0"), repo2docker's dev
// builds ("2024.07.0-52.g5a3f2b1": 52 commits after 2024.07.0) and
// chartpress dev versions ("4.1.0-0.dev.git.6957.h1a2b3c4": before 4.1.0).
type Version struct {
	// Tag is the text the version was read from, as it appears in the
	// registry or index.
	Tag string
	// core are the dotted numbers (1 to 4 of them).
	core []int
	// pre are the pre-release identifiers of a semver pre-release.
	pre []string
	// dev is the distance of a dev build from core; 0 for other versions.
	dev int
	// Commit is the git commit of a dev build ("5a3f2b1"), "" otherwise.
	Commit string
}

var (
	versionRE = regexp.MustCompile(`^v?(\d+(?:\.\d+){0,3})(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)
	// devRE is repo2docker's (versioneer's) "<distance>.g<commit>".
	devRE = regexp.MustCompile(`^(\d+)\.g([0-9a-f]{7,40})$`)
	// chartDevRE ends chartpress's "0.dev.git.<n>.h<commit>".
	chartDevRE = regexp.MustCompile(`\.git\.\d+\.h([0-9a-f]{7,40})$`)
)

// ParseVersion reads tag as a version. variant, when not empty, is a suffix
// every tag of the dependency carries ("dind" in "27.3.1-dind"); tags
// without it are not versions of the dependency. Tags like "latest",
// "main" or "27.3-rc" with a non-numeric core are not versions (ok false).
func ParseVersion(tag, variant string) (Version, bool) {
	s := tag
	if variant != "" {
		var ok bool
		if s, ok = strings.CutSuffix(s, "-"+variant); !ok {
			return Version{}, false
		}
	}
	m := versionRE.FindStringSubmatch(s)
	if m == nil || len(m[1]) > 64 {
		return Version{}, false
	}
	v := Version{Tag: tag}
	for _, p := range strings.Split(m[1], ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n > 1e9 {
			return Version{}, false
		}
		v.core = append(v.core, n)
	}
	if m[2] == "" {
		return v, true
	}
	if d := devRE.FindStringSubmatch(m[2]); d != nil {
		v.dev, _ = strconv.Atoi(d[1])
		v.Commit = d[2]
		return v, v.dev > 0
	}
	v.pre = strings.Split(m[2], ".")
	if slices.Contains(v.pre, "") {
		return Version{}, false
	}
	if d := chartDevRE.FindStringSubmatch(m[2]); d != nil {
		v.Commit = d[1]
	}
	return v, true
}

// Stable reports whether v is a release: neither a pre-release nor a dev
// build.
func (v Version) Stable() bool { return len(v.pre) == 0 && v.dev == 0 }

// Parts is the number of dotted numbers of v's core: candidates must have
// as many as the deployed version, so that a rolling tag like "27" never
// replaces "27.3.1".
func (v Version) Parts() int { return len(v.core) }

// Compare orders versions: by core numbers, then a pre-release before its
// release, then dev builds after it by distance. It returns -1, 0 or +1.
func (v Version) Compare(w Version) int {
	for i := range max(len(v.core), len(w.core)) {
		if c := cmp.Compare(at(v.core, i), at(w.core, i)); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(v.rank(), w.rank()); c != 0 {
		return c
	}
	if len(v.pre) > 0 {
		return comparePre(v.pre, w.pre)
	}
	return cmp.Compare(v.dev, w.dev)
}

// rank places pre-releases (0) before releases (1) before dev builds (2).
func (v Version) rank() int {
	switch {
	case len(v.pre) > 0:
		return 0
	case v.dev > 0:
		return 2
	}
	return 1
}

func at(s []int, i int) int {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// comparePre compares semver pre-release identifiers: numbers numerically
// and below words, words in ASCII order, a shorter list first when equal.
func comparePre(a, b []string) int {
	for i := range min(len(a), len(b)) {
		na, errA := strconv.ParseUint(a[i], 10, 64)
		nb, errB := strconv.ParseUint(b[i], 10, 64)
		switch {
		case errA == nil && errB == nil:
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
		case errA == nil:
			return -1
		case errB == nil:
			return 1
		default:
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
	}
	return cmp.Compare(len(a), len(b))
}

// Latest returns the highest version among tags that is a version of the
// same shape as current (same variant, as many core numbers), stable
// unless prerelease, and matching filter when filter is not nil. ok is
// false when no tag qualifies.
func Latest(tags []string, current Version, variant string, prerelease bool, filter *regexp.Regexp) (Version, bool) {
	var best Version
	found := false
	for _, t := range tags {
		if filter != nil && !filter.MatchString(t) {
			continue
		}
		v, ok := ParseVersion(t, variant)
		if !ok || v.Parts() != current.Parts() || (!prerelease && !v.Stable()) {
			continue
		}
		if !found || v.Compare(best) > 0 {
			best, found = v, true
		}
	}
	return best, found
}

// variantOf returns the variant suffix of a deployed tag: a final
// "-<letters>" that is not a pre-release word ("27.3.1-dind" → "dind").
func variantOf(tag string) string {
	i := strings.LastIndex(tag, "-")
	if i < 0 {
		return ""
	}
	s := tag[i+1:]
	if s == "" || strings.ToLower(s) != s || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz") != "" {
		return ""
	}
	switch s {
	case "alpha", "beta", "rc", "pre", "dev", "a", "b":
		return ""
	}
	if _, ok := ParseVersion(tag[:i], ""); !ok {
		return ""
	}
	return s
}
