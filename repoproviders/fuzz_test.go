package repoproviders

import (
	"errors"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileSpecs are seeds every spec fuzzer starts from, besides its own
// table examples.
var hostileSpecs = []string{
	"", "/", "//", "%", "%%", "%2", "%zz", "%00", "%0a/%0d", "a/b/%ff", "a/b/\xff", "\x00/\x00/\x00",
	"-/-/-", "--upload-pack=x/main", "a/b/--upload-pack=x", "a/b/-", "../../x/y", "a/../b/c",
	"a/b/c?d#e", "a/b/c%3Fd%23e", "a/b/%2E%2E/%2E%2E", "a/b/@{-1}", "a/b/HEAD~1", "a/b/x.lock",
	"http%3A%2F%2F127.0.0.1%2Fr/main", "http%3A%2F%2F%5B%3A%3A1%5D%3A80%2Fr/main",
	"http%3A%2F%2Fuser%3Apw%40example.org%2Fr/main", "http%3A%2F%2F2130706433%2F/main",
	"git%40host%3A%2Fpath/main", "git@host:path/main", "-oProxyCommand=x@h:p/main",
	"https%3A%2F%2Fexample.org%2F%2E%2E%2Fr/main", "https%3A%2F%2F%E2%80%AEexample.org/main",
	"ssh%3A%2F%2F-oProxyCommand%3Dx%2Fr/main", "https%3A%2F%2Fexample.org%3A99999%2Fr/main",
	strings.Repeat("a/", 3000), strings.Repeat("%", 5000),
}

// checkErrorText checks what every Parse error must satisfy.
func checkErrorText(t *testing.T, spec string, err error) {
	t.Helper()
	if !utf8.ValidString(err.Error()) {
		t.Errorf("Parse(%q) error %q is not valid UTF-8", spec, err)
	}
	var ue *userError
	var refused *refusedHostError
	if !errors.As(err, &ue) && !errors.As(err, &refused) {
		t.Errorf("Parse(%q) error %q (%T) is not a user-facing error", spec, err, err)
	}
}

func FuzzParseGitHub(f *testing.F) {
	for _, s := range append(hostileSpecs,
		"user/repo/master", "user/repo/hotfix/squash-bug", "user/repo/feature/save_world",
		"a/long/specification/with/many/slashes/to/split/on", "nothing_to_split", "short/HEAD",
		"short/suggestion", "jupyterhub/zero-to-jupyterhub-k8s.git/0.9.1", "org/repo/feature%2Fx",
	) {
		f.Add(s)
	}
	gh := NewGitHub(GitHubConfig{}, nil, nil, nil)
	f.Fuzz(func(t *testing.T, spec string) {
		repo, err := gh.Parse(spec)
		if err != nil {
			checkErrorText(t, spec, err)
			return
		}
		s, err := parseGitHubSpec(spec)
		if err != nil {
			t.Fatalf("Parse(%q) succeeded, parseGitHubSpec failed: %v", spec, err)
		}
		if repo.Spec != spec || repo.URL != "https://github.com/"+s.user+"/"+s.repo || repo.BuildSlug != s.user+"-"+s.repo {
			t.Errorf("Parse(%q) = %+v, inconsistent with %+v", spec, repo, s)
		}
		if p := refNameProblem(repo.Ref); p != "" {
			t.Errorf("Parse(%q) accepted ref %q: %s", spec, repo.Ref, p)
		}
		u, err := url.Parse(gh.apiURL(s))
		if err != nil {
			t.Fatalf("API URL %q of %q does not parse: %v", gh.apiURL(s), spec, err)
		}
		wantPrefix := "/repos/" + s.user + "/" + s.repo + "/commits/"
		if u.Host != "api.github.com" || u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, wantPrefix) {
			t.Errorf("API URL %q of %q leaves the commits endpoint", u, spec)
		}
	})
}

func FuzzParseGitLab(f *testing.F) {
	for _, s := range append(hostileSpecs,
		"gitlab-org%2Fgitlab-foss/v10.0.6", "group%2Fproject%2Frepo/main", "group%2Fproject/",
		"group%2Fproject", "g%2Fp/feature%2Fa%2Bb", "g%2F..%2Fp/main",
	) {
		f.Add(s)
	}
	gl := NewGitLab(GitLabConfig{}, nil, nil, nil)
	f.Fuzz(func(t *testing.T, spec string) {
		repo, err := gl.Parse(spec)
		if err != nil {
			checkErrorText(t, spec, err)
			return
		}
		s, err := parseGitLabSpec(spec)
		if err != nil {
			t.Fatalf("Parse(%q) succeeded, parseGitLabSpec failed: %v", spec, err)
		}
		if p := refNameProblem(repo.Ref); p != "" {
			t.Errorf("Parse(%q) accepted ref %q: %s", spec, repo.Ref, p)
		}
		for u, wantPath := range map[string]string{
			repo.URL:     "/" + s.namespace + ".git",
			gl.apiURL(s): "/api/v4/projects/" + s.namespace + "/repository/commits/" + s.ref,
		} {
			parsed, err := url.Parse(u)
			if err != nil {
				t.Fatalf("URL %q of %q does not parse: %v", u, spec, err)
			}
			if parsed.Host != "gitlab.com" || parsed.User != nil || parsed.RawQuery != "" || parsed.Fragment != "" || parsed.Path != wantPath {
				t.Errorf("URL %q of %q = host %q path %q, want gitlab.com, %q", u, spec, parsed.Host, parsed.Path, wantPath)
			}
		}
	})
}

func FuzzParseGit(f *testing.F) {
	for _, s := range append(hostileSpecs,
		"https%3A%2F%2Fgithub.com%2Fjupyterhub%2Fzero-to-jupyterhub-k8s/f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
		"not%20a%20repo/main", "ftp%3A%2F%2Fprotocol.unsupported/main", "git%40github.com%3Ajupyterhub%2Fbinderhub/main",
		"https%3A%2F%2Fgithub.com%2Fbinder-examples%2Fconda/main", "git%3A%2F%2Fexample.org%2Fr/HEAD",
		"https%3A%2F%2Fexample.org%2Fr/", "http%3A%2F%2F10.0.0.5%3A3000%2Fr/main",
	) {
		f.Add(s)
	}
	cfg := GitConfig{AllowedProtocols: []string{"http", "https", "git", "ssh"}, AllowedHosts: []string{"10.0.0.5:3000"}}
	g := NewGit(cfg, nil, nil)
	f.Fuzz(func(t *testing.T, spec string) {
		repo, err := g.Parse(spec)
		if err != nil {
			checkErrorText(t, spec, err)
			return
		}
		if strings.HasPrefix(repo.URL, "-") || strings.ContainsFunc(repo.URL, isControl) {
			t.Errorf("Parse(%q) accepted URL %q", spec, repo.URL)
		}
		if p := refNameProblem(repo.Ref); p != "" {
			t.Errorf("Parse(%q) accepted ref %q: %s", spec, repo.Ref, p)
		}
		u, err := url.Parse(repo.URL)
		if err != nil {
			t.Fatalf("Parse(%q) accepted URL %q that does not parse: %v", spec, repo.URL, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "git" && u.Scheme != "ssh" {
			t.Errorf("Parse(%q) accepted scheme %q", spec, u.Scheme)
		}
		if u.User != nil && (u.Scheme != "ssh" || u.User.String() != u.User.Username()) {
			t.Errorf("Parse(%q) accepted credentials in %q", spec, repo.URL)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.Hostname() == "" {
			t.Errorf("Parse(%q) accepted URL %q", spec, repo.URL)
		}
		if p := hostProblem(u.Hostname()); p != "" && u.Host != "10.0.0.5:3000" {
			t.Errorf("Parse(%q) accepted host %q: %s", spec, u.Hostname(), p)
		}
	})
}

// FuzzRefName checks refNameProblem against `git check-ref-format`.
func FuzzRefName(f *testing.F) {
	for _, s := range []string{
		"main", "HEAD", "feature/x", "v1.0", "a..b", "a/.b", "a.lock", "a@{b", "@", "a b", "a\\b",
		"a//b", "/a", "a/", "a.", "ü", "\x7f", "a*", "-x", "a/b.lock/c", "@{", "a\x00b", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		problem := refNameProblem(ref)
		if strings.HasPrefix(ref, "-") || strings.ContainsRune(ref, 0) {
			if problem == "" {
				t.Errorf("refNameProblem(%q) accepted a leading dash or NUL", ref)
			}
			return // git cannot be asked about these
		}
		err := exec.Command("git", "check-ref-format", "--allow-onelevel", ref).Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if gitValid := err == nil; gitValid != (problem == "") {
			t.Errorf("refNameProblem(%q) = %q, git check-ref-format valid = %v", ref, problem, gitValid)
		}
	})
}
