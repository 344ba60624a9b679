package builder

import (
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/testgit"
)

// authLog records the Authorization headers a git server received.
type authLog struct {
	mu       sync.Mutex
	requests int
	headers  []string
}

// demandAuth wraps a git server: requests without credentials get a Basic
// challenge, so that git asks its credential helpers for this host.
func (l *authLog) demandAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.requests++
		if h := r.Header.Get("Authorization"); h != "" {
			l.headers = append(l.headers, h)
		}
		l.mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (l *authLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests, l.headers = 0, nil
}

func (l *authLog) snapshot() (requests int, headers []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, append([]string(nil), l.headers...)
}

// buildGitEnv is the environment of git in a repo2docker build container:
// the image's system configuration names the "env" credential helper for
// every host, and git-credential-env prints $GIT_CREDENTIAL_ENV with its
// "\n" expanded. env is what the build request adds.
func buildGitEnv(t *testing.T, env []string) []string {
	t.Helper()
	dir := t.TempDir()
	helper := filepath.Join(dir, "git-credential-env")
	if err := os.WriteFile(helper, []byte("#!/bin/sh\nprintf '%b\\n' \"$GIT_CREDENTIAL_ENV\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	system := filepath.Join(dir, "gitconfig")
	if err := os.WriteFile(system, []byte("[credential]\n\thelper = env\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{
		"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + dir, "GIT_CONFIG_SYSTEM=" + system, "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
	}
	return append(base, env...)
}

// cloneRecursive clones url with its submodules in env. The clone of a
// submodule that got no credentials fails; that is the point.
func cloneRecursive(t *testing.T, env []string, url string) {
	t.Helper()
	cmd := exec.Command("git", "clone", "-q", "--recurse-submodules", url, filepath.Join(t.TempDir(), "clone"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("git clone --recurse-submodules %s: %v\n%s", url, err, out)
}

// TestGitCredentialsStayWithTheirHost clones, with real git and a
// repo2docker-style credential helper, a repository on the provider's host
// (127.0.0.1) that has a submodule on another host (127.0.0.2), and one that
// redirects there. Both servers demand credentials. The provider's host gets
// them; the other host never does.
func TestGitCredentialsStayWithTheirHost(t *testing.T) {
	const user, password = "binder", "s3cret-git-token"
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))

	var otherLog authLog
	other := testgit.StartOn(t, "127.0.0.2:0", otherLog.demandAuth)
	subURL, subSHA := other.Repo(t, "sub", map[string]string{"README.md": "submodule\n"})

	var providerLog authLog
	provider := testgit.StartOn(t, "127.0.0.1:0", func(git http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rest, ok := strings.CutPrefix(r.URL.Path, "/moved.git/"); ok {
				http.Redirect(w, r, other.URL+"/sub.git/"+rest+"?"+r.URL.RawQuery, http.StatusFound)
				return
			}
			providerLog.demandAuth(git).ServeHTTP(w, r)
		})
	})
	work := t.TempDir()
	testgit.Git(t, work, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(work, ".gitmodules"),
		[]byte("[submodule \"sub\"]\n\tpath = sub\n\turl = "+subURL+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testgit.Git(t, work, "update-index", "--add", "--cacheinfo", "160000,"+subSHA+",sub")
	testgit.Git(t, work, "add", ".gitmodules")
	testgit.Git(t, work, "commit", "-q", "-m", "Add a submodule on another host")
	superURL := provider.AddBare(t, "super", work)

	credentials := `username=` + user + `\npassword=` + password
	check := func(t *testing.T, env []string, wantOtherLeak bool) {
		t.Helper()
		cloneRecursive(t, env, superURL)
		cloneRecursive(t, env, provider.URL+"/moved.git")
		if _, got := providerLog.snapshot(); !slices.Contains(got, wantAuth) {
			t.Errorf("provider host received Authorization %q, want %q among them", got, wantAuth)
		}
		requests, got := otherLog.snapshot()
		if requests == 0 {
			t.Fatal("the other host got no request: the clones did not reach the submodule or the redirect")
		}
		if leaked := slices.Contains(got, wantAuth); leaked != wantOtherLeak {
			t.Errorf("other host received Authorization %q; credentials leaked = %v, want %v", got, leaked, wantOtherLeak)
		}
	}

	t.Run("helper for every host", func(t *testing.T) {
		// What builds got before: GIT_CREDENTIAL_ENV alone. This shows the
		// servers and helper above do catch a leak.
		check(t, buildGitEnv(t, []string{"GIT_CREDENTIAL_ENV=" + credentials}), true)
	})
	providerLog.reset()
	otherLog.reset()

	t.Run("scoped to the repository's origin", func(t *testing.T) {
		req := binderbuild.BuildRequest{RepoURL: superURL, GitCredentials: credentials}
		var env []string
		for _, e := range gitCredentialEnv(req) {
			env = append(env, e.name+"="+e.value)
		}
		check(t, buildGitEnv(t, env), false)
	})
}
