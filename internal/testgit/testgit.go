// Package testgit serves git repositories for tests over smart HTTP (the
// git CLI's http-backend behind net/http/cgi) on 127.0.0.1.
//
// git is a test dependency (`make test-deps`); Start fails the test, never
// skips it, when it is missing.
package testgit

import (
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Server serves the repositories made by Repo.
type Server struct {
	// URL is http://127.0.0.1:<port>.
	URL string
	// Host is 127.0.0.1:<port>.
	Host string
	root string
}

// Start starts a git server for t on 127.0.0.1, stopped by t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartOn(t, "127.0.0.1:0", nil)
}

// StartOn starts a git server for t listening on addr (any loopback
// address, e.g. "127.0.0.2:0"), stopped by t's cleanup. wrap, if not nil,
// wraps the git handler, e.g. to demand credentials or to redirect.
func StartOn(t testing.TB, addr string, wrap func(http.Handler) http.Handler) *Server {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("testgit: git not found: run `make test-deps` (apt-get install git)")
	}
	root := t.TempDir()
	execPath := strings.TrimSpace(run(t, root, "--exec-path"))
	var h http.Handler = &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	if wrap != nil {
		h = wrap(h)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("testgit: listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, Host: strings.TrimPrefix(srv.URL, "http://"), root: root}
}

// Repo creates the repository name.git with files (path → content) in one
// commit on branch main and returns its clone URL and the commit's sha.
func (s *Server) Repo(t testing.TB, name string, files map[string]string) (url, sha string) {
	t.Helper()
	work := t.TempDir()
	run(t, work, "init", "-q", "-b", "main")
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, work, "add", "-A")
	run(t, work, "commit", "-q", "-m", "Add "+name)
	sha = strings.TrimSpace(run(t, work, "rev-parse", "HEAD"))
	return s.AddBare(t, name, work), sha
}

// AddBare serves a bare clone of the work tree repository at work as
// name.git and returns its clone URL.
func (s *Server) AddBare(t testing.TB, name, work string) string {
	t.Helper()
	run(t, s.root, "clone", "-q", "--bare", work, name+".git")
	return s.URL + "/" + name + ".git"
}

// Git runs git in dir without the user's or the system's configuration,
// with fixed author and date, and returns its standard output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return run(t, dir, args...)
}

// run runs git in dir without the user's or the system's configuration.
func run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=binderbuild", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=binderbuild", "GIT_COMMITTER_EMAIL=test@example.org",
		"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
		"GIT_TERMINAL_PROMPT=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("testgit: git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}
