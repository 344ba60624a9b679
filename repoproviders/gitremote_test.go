package repoproviders

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/dns/dnsmessage"
)

// gitEnv keeps the user's and the system's git configuration out of tests.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=binderbuild", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=binderbuild", "GIT_COMMITTER_EMAIL=test@example.org",
		"GIT_TERMINAL_PROMPT=0")
}

// git runs the git CLI in dir and returns its trimmed standard output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// gitServers serves the bare repositories repo.git (seeded by seedRepo) and
// empty.git from root over smart HTTP (git http-backend) and git://
// (git daemon), both on 127.0.0.1.
type gitServers struct {
	root     string
	httpURL  string // http://127.0.0.1:<port>
	gitURL   string // git://127.0.0.1:<port>
	httpHost string // 127.0.0.1:<port>
	gitHost  string
}

func newGitServers(t *testing.T) *gitServers {
	t.Helper()
	root := t.TempDir()
	seedRepo(t, root)
	git(t, root, "init", "-q", "--bare", "empty.git")

	backend := &cgi.Handler{
		Path: filepath.Join(git(t, root, "--exec-path"), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	srv := httptest.NewServer(backend)
	t.Cleanup(srv.Close)

	port := freePort(t)
	daemon := exec.Command("git", "daemon", "--listen=127.0.0.1", "--port="+port, "--base-path="+root,
		"--export-all", "--reuseaddr", root)
	daemon.Env = gitEnv()
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemon.Process.Kill()
		_ = daemon.Wait()
	})
	gitHost := "127.0.0.1:" + port
	waitForListener(t, gitHost)

	return &gitServers{
		root:     root,
		httpURL:  srv.URL,
		gitURL:   "git://" + gitHost,
		httpHost: strings.TrimPrefix(srv.URL, "http://"),
		gitHost:  gitHost,
	}
}

// seedRepo creates root/repo.git with main (HEAD), feature/x, feature/main
// (which `git ls-remote <url> main` lists before refs/heads/main), a branch
// and a tag both named v2, a lightweight tag and an annotated tag.
func seedRepo(t *testing.T, root string) {
	t.Helper()
	work := filepath.Join(root, "work")
	git(t, root, "init", "-q", "-b", "main", work)
	commit := func(msg string) { git(t, work, "commit", "-q", "--allow-empty", "-m", msg) }
	commit("one")
	git(t, work, "tag", "light")
	git(t, work, "tag", "-a", "-m", "release 1.0", "v1.0")
	commit("two")
	git(t, work, "checkout", "-q", "-b", "feature/x")
	commit("feature x")
	git(t, work, "checkout", "-q", "-b", "feature/main", "main")
	commit("feature main")
	git(t, work, "checkout", "-q", "-b", "v2", "main")
	commit("branch v2")
	git(t, work, "tag", "v2", "light")
	git(t, work, "checkout", "-q", "main")
	commit("three")
	git(t, root, "clone", "-q", "--bare", work, "repo.git")
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// waitForListener polls until addr accepts connections.
func waitForListener(t *testing.T, addr string) {
	t.Helper()
	for range 500 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// lsRemote returns the first object id `git ls-remote -- repoURL ref`
// prints, or "" when it prints nothing.
func lsRemote(t *testing.T, repoURL, ref string) string {
	t.Helper()
	out := git(t, t.TempDir(), "ls-remote", "--", repoURL, ref)
	first, _, _ := strings.Cut(out, "\n")
	id, _, _ := strings.Cut(first, "\t")
	return id
}

func TestGitResolveMatchesLsRemote(t *testing.T) {
	s := newGitServers(t)
	m, _ := newTestMetrics(t)
	g := NewGit(GitConfig{AllowedHosts: []string{s.httpHost, s.gitHost}}, m, nil)
	repo := filepath.Join(s.root, "repo.git")

	// The cases that make ls-remote's rules visible; checked against git
	// itself so that the comparison below cannot pass vacuously.
	semantics := []struct{ ref, want string }{
		{ref: "HEAD", want: git(t, repo, "rev-parse", "main")},
		{ref: "main", want: git(t, repo, "rev-parse", "refs/heads/feature/main")},
		{ref: "v1.0", want: git(t, repo, "rev-parse", "refs/tags/v1.0")}, // the tag object
		{ref: "v2", want: git(t, repo, "rev-parse", "refs/heads/v2")},
	}
	if tagObject, commit := git(t, repo, "rev-parse", "v1.0"), git(t, repo, "rev-parse", "v1.0^{commit}"); tagObject == commit {
		t.Fatalf("v1.0 is not an annotated tag")
	}

	refs := []string{
		"HEAD", "main", "feature/x", "x", "feature/main", "heads/main", "refs/heads/main",
		"light", "v1.0", "refs/tags/v1.0", "tags/v1.0", "v2", "heads/v2", "refs/tags/v2",
		"nosuchref", "ature/x", "eature/x", "refs/heads", "tags", "v1",
	}
	for _, base := range []string{s.httpURL, s.gitURL} {
		repoURL := base + "/repo.git"
		for _, c := range semantics {
			if got := lsRemote(t, repoURL, c.ref); got != c.want {
				t.Fatalf("git ls-remote %s %s = %q, want %q", repoURL, c.ref, got, c.want)
			}
		}
		for _, ref := range refs {
			t.Run(base[:strings.Index(base, ":")]+"/"+ref, func(t *testing.T) {
				want := lsRemote(t, repoURL, ref)
				got, err := resolveSpec(t, g, gitSpecOf(repoURL, ref))
				if want == "" {
					wantNotFound(t, "Resolve("+ref+")", err)
					return
				}
				if err != nil {
					t.Fatalf("Resolve(%q) error = %v, want %s", ref, err, want)
				}
				if got.ResolvedRef != want {
					t.Errorf("Resolve(%q) = %s, want %s (git ls-remote)", ref, got.ResolvedRef, want)
				}
				if wantSpec := quote(repoURL) + "/" + want; got.ResolvedSpec != wantSpec || got.RefURL != repoURL {
					t.Errorf("Resolve(%q) = spec %q, ref URL %q; want %q, %q", ref, got.ResolvedSpec, got.RefURL, wantSpec, repoURL)
				}
			})
		}
	}
	if got := testutil.ToFloat64(m.upstream.WithLabelValues("git", "ok")); got == 0 {
		t.Errorf("git ok requests = %v, want > 0", got)
	}
}

func TestGitResolveMissing(t *testing.T) {
	s := newGitServers(t)
	m, _ := newTestMetrics(t)
	g := NewGit(GitConfig{AllowedHosts: []string{s.httpHost, s.gitHost}}, m, nil)
	for _, repoURL := range []string{
		s.httpURL + "/nope.git", s.gitURL + "/nope.git",
		s.httpURL + "/empty.git", s.gitURL + "/empty.git",
		s.gitURL + "/",
	} {
		t.Run(repoURL, func(t *testing.T) {
			_, err := resolveSpec(t, g, gitSpecOf(repoURL, "main"))
			wantNotFound(t, "Resolve", err)
		})
	}
	if got := testutil.ToFloat64(m.upstream.WithLabelValues("git", "not_found")); got != 5 {
		t.Errorf("git not_found requests = %v, want 5", got)
	}
}

func TestGitRefusesLoopbackWithoutAllowList(t *testing.T) {
	s := newGitServers(t)
	g := NewGit(GitConfig{}, nil, nil)
	for _, repoURL := range []string{s.httpURL + "/repo.git", s.gitURL + "/repo.git"} {
		t.Run(repoURL, func(t *testing.T) {
			want := "Refusing to contact 127.0.0.1: it is a private or loopback address."
			if _, err := g.Parse(gitSpecOf(repoURL, "main")); err == nil || err.Error() != want {
				t.Errorf("Parse error = %v, want %q", err, want)
			}
		})
	}
}

// fakeResolver answers A and AAAA queries from answers; other names do not
// exist. It stands in for a DNS server that points names at private
// addresses, including after a first, public answer (rebinding).
func fakeResolver(t *testing.T, answers map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, err := dnsAnswer(buf[:n], answers); err == nil {
				_, _ = pc.WriteTo(resp, addr)
			}
		}
	}()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}
}

func dnsAnswer(req []byte, answers map[string][]netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	addrs, known := answers[strings.TrimSuffix(q.Name.String(), ".")]
	rcode := dnsmessage.RCodeSuccess
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: rcode})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}
	for _, a := range addrs {
		switch {
		case a.Is4() && q.Type == dnsmessage.TypeA:
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && q.Type == dnsmessage.TypeAAAA:
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

func TestGitRefusesNamesResolvingToPrivateAddresses(t *testing.T) {
	s := newGitServers(t)
	_, httpPort, _ := net.SplitHostPort(s.httpHost)
	_, gitPort, _ := net.SplitHostPort(s.gitHost)
	g := NewGit(GitConfig{}, nil, nil)
	g.guard.public.Resolver = fakeResolver(t, map[string][]netip.Addr{
		"loopback.test": {netip.MustParseAddr("127.0.0.1")},
		"v6.test":       {netip.MustParseAddr("::1")},
		"mapped.test":   {netip.MustParseAddr("::ffff:127.0.0.1")},
		"metadata.test": {netip.MustParseAddr("169.254.169.254")},
		"private.test":  {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")},
	})
	for _, host := range []string{"loopback.test", "v6.test", "mapped.test", "metadata.test", "private.test"} {
		for _, repoURL := range []string{
			"http://" + host + ":" + httpPort + "/repo.git",
			"git://" + host + ":" + gitPort + "/repo.git",
		} {
			t.Run(repoURL, func(t *testing.T) {
				_, err := resolveSpec(t, g, gitSpecOf(repoURL, "main"))
				want := "Refusing to contact " + host + ": it resolves to a private or loopback address."
				if err == nil || err.Error() != want {
					t.Errorf("Resolve error = %v, want %q", err, want)
				}
			})
		}
	}
}

func TestGuardDialsCheckedAddresses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())

	tests := []struct {
		name    string
		allow   []string
		addr    string
		wantErr string
	}{
		{name: "loopback literal", addr: "127.0.0.1:" + port, wantErr: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
		{name: "localhost", addr: "localhost:" + port, wantErr: "Refusing to contact localhost: it is a name for the local machine."},
		{name: "decimal", addr: "2130706433:" + port, wantErr: "Refusing to contact 2130706433: numeric host names must be written as dotted-decimal IPv4 addresses."},
		{name: "allowed host and port", allow: []string{"127.0.0.1:" + port}, addr: "127.0.0.1:" + port},
		{name: "allowed host", allow: []string{"localhost"}, addr: "localhost:" + port},
		{name: "other port", allow: []string{"127.0.0.1:1"}, addr: "127.0.0.1:" + port, wantErr: "Refusing to contact 127.0.0.1: it is a private or loopback address."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuard(newHostList(tc.allow), time.Minute)
			conn, err := g.DialContext(t.Context(), "tcp", tc.addr)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("DialContext(%s) error = %v", tc.addr, err)
				}
				conn.Close()
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("DialContext(%s) error = %v, want %q", tc.addr, err, tc.wantErr)
			}
		})
	}

	// The Control hook itself, for an address that passed the text checks.
	g := newGuard(nil, time.Minute)
	_, err = g.public.DialContext(t.Context(), "tcp", "127.0.0.1:"+port)
	if !errors.Is(err, errBlockedAddress) {
		t.Errorf("public dialer error = %v, want errBlockedAddress", err)
	}
}

func TestGitRedirectToDisallowedHost(t *testing.T) {
	s := newGitServers(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.httpURL+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	redirectorHost := strings.TrimPrefix(redirector.URL, "http://")
	spec := gitSpecOf(redirector.URL+"/repo.git", "main")

	g := NewGit(GitConfig{AllowedHosts: []string{redirectorHost}}, nil, nil)
	_, err := resolveSpec(t, g, spec)
	if want := "Refusing to contact 127.0.0.1: it is a private or loopback address."; err == nil || err.Error() != want {
		t.Errorf("Resolve through a redirect to a disallowed host: error = %v, want %q", err, want)
	}

	g = NewGit(GitConfig{AllowedHosts: []string{redirectorHost, s.httpHost}}, nil, nil)
	got, err := resolveSpec(t, g, spec)
	if want := lsRemote(t, s.httpURL+"/repo.git", "main"); err != nil || got.ResolvedRef != want {
		t.Errorf("Resolve through an allowed redirect = %q, %v; want %q", got.ResolvedRef, err, want)
	}
}

func TestGitRemoteErrors(t *testing.T) {
	s := newGitServers(t)
	closedPort := freePort(t)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>hello</html>")
	}))
	t.Cleanup(plain.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn // accepted, never answered
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	allow := []string{s.httpHost, s.gitHost, "127.0.0.1:" + closedPort,
		strings.TrimPrefix(plain.URL, "http://"), strings.TrimPrefix(broken.URL, "http://"), silent.Addr().String()}
	tests := []struct {
		name    string
		cfg     GitConfig
		repoURL string
		want    string
	}{
		{
			name:    "http refs too large",
			cfg:     GitConfig{MaxRefsBytes: 64},
			repoURL: s.httpURL + "/repo.git",
			want:    "the list of refs of " + s.httpURL + "/repo.git is larger than 64 bytes",
		},
		{
			name:    "git refs too large",
			cfg:     GitConfig{MaxRefsBytes: 64},
			repoURL: s.gitURL + "/repo.git",
			want:    "the list of refs of " + s.gitURL + "/repo.git is larger than 64 bytes",
		},
		{
			name:    "http connection refused",
			repoURL: "http://127.0.0.1:" + closedPort + "/repo.git",
			want:    "could not contact 127.0.0.1:" + closedPort + ": connection refused",
		},
		{
			name:    "git connection refused",
			repoURL: "git://127.0.0.1:" + closedPort + "/repo.git",
			want:    "could not contact 127.0.0.1:" + closedPort + ": connection refused",
		},
		{
			name:    "not a git server",
			repoURL: plain.URL + "/repo.git",
			want:    "could not list the refs of " + plain.URL + "/repo.git: the server did not answer like a git server",
		},
		{
			name:    "server error",
			repoURL: broken.URL + "/repo.git",
			want:    "unexpected response from " + broken.URL + "/repo.git (HTTP 500)",
		},
		{
			name:    "http timeout",
			cfg:     GitConfig{Timeout: 100 * time.Millisecond},
			repoURL: "http://" + silent.Addr().String() + "/repo.git",
			want:    "could not contact " + silent.Addr().String() + ": the request timed out",
		},
		{
			name:    "git timeout",
			cfg:     GitConfig{Timeout: 100 * time.Millisecond},
			repoURL: "git://" + silent.Addr().String() + "/repo.git",
			want:    "could not contact " + silent.Addr().String() + ": the request timed out",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.AllowedHosts = allow
			m, _ := newTestMetrics(t)
			g := NewGit(tc.cfg, m, nil)
			_, err := resolveSpec(t, g, gitSpecOf(tc.repoURL, "main"))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Resolve error = %v, want %q", err, tc.want)
			}
			if got := testutil.ToFloat64(m.upstream.WithLabelValues("git", "error")); got != 1 {
				t.Errorf("git error requests = %v, want 1", got)
			}
		})
	}
}

func TestGitResolveCancelled(t *testing.T) {
	s := newGitServers(t)
	g := NewGit(GitConfig{AllowedHosts: []string{s.httpHost}}, nil, nil)
	repo, err := g.Parse(gitSpecOf(s.httpURL+"/repo.git", "main"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = g.Resolve(ctx, repo)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve with a cancelled context: error = %v, want context.Canceled", err)
	}
}
