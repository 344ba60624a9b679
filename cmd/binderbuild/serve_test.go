package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/testregistry"
)

const headSHA = "596b52f10efb0c9befc0c4ae850cc5175297d71c"

// fakeGitHub answers the commits API: HEAD of every repository resolves to
// headSHA, every other ref is unknown (422, as GitHub answers). It counts
// requests.
type fakeGitHub struct {
	calls atomic.Int64
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if strings.HasPrefix(r.URL.Path, "/repos/") && strings.HasSuffix(r.URL.Path, "/commits/HEAD") {
		w.Header().Set("ETag", `"etag-1"`)
		fmt.Fprintf(w, `{"sha": %q}`, headSHA)
		return
	}
	w.WriteHeader(http.StatusUnprocessableEntity)
	fmt.Fprint(w, `{"message": "No commit found for SHA: nosuchref"}`)
}

// countingHandler counts the requests reaching a registry.
type countingHandler struct {
	next  http.Handler
	calls atomic.Int64
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.calls.Add(1)
	c.next.ServeHTTP(w, r)
}

// testEnv is the environment of a test's service: settings are passed as
// values, never through the process environment, so that tests can run in
// parallel.
type testEnv map[string]string

// newEnv is the environment every test starts from: no container engine,
// the embedded registry on a free port with its data in a temporary folder
// (testEngineHost and testDataDir, set by TestMain).
func newEnv() testEnv {
	return testEnv{"DOCKER_HOST": testEngineHost, "BINDERBUILD_EMBEDDED_REGISTRY_LISTEN": "127.0.0.1:0", "BINDERBUILD_DATA_DIR": testDataDir}
}

func (e testEnv) set(k, v string)                { e[k] = v }
func (e testEnv) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e testEnv) getenv(k string) string         { return e[k] }
func (e testEnv) with(kv map[string]string) testEnv {
	return testEnv(maps.Clone(e)).merge(kv)
}

// list is e as KEY=VALUE entries, for a child process.
func (e testEnv) list() []string {
	var l []string
	for k, v := range e {
		l = append(l, k+"="+v)
	}
	return l
}

func (e testEnv) merge(kv map[string]string) testEnv { maps.Copy(e, kv); return e }

// fixture is the service's real wiring against a fake GitHub API and a real
// in-process registry holding the image of org/repo at HEAD.
type fixture struct {
	github   *fakeGitHub
	registry *countingHandler
	prefix   string
	// env is the service's environment.
	env testEnv
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{github: &fakeGitHub{}, registry: &countingHandler{next: ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))}, env: newEnv()}
	env := f.env
	gh := httptest.NewServer(f.github)
	t.Cleanup(gh.Close)
	reg := httptest.NewServer(f.registry)
	t.Cleanup(reg.Close)
	f.prefix = strings.TrimPrefix(reg.URL, "http://") + "/binder/"
	f.push(t, binderbuild.ImageName(f.prefix, "org-repo", headSHA))
	env.set("BINDERBUILD_GITHUB_API_URL", gh.URL)
	env.set("BINDERBUILD_IMAGE_PREFIX", f.prefix)
	env.set("KUBECONFIG", "")
	env.set("BINDERBUILD_GC_SCHEDULE", "")
	// git specs name example.com; allowed, its address is not looked up
	// (tests send nothing beyond loopback).
	env.set("BINDERBUILD_GIT_ALLOWED_HOSTS", "example.com")
	return f
}

func (f *fixture) push(t testing.TB, image string) {
	t.Helper()
	testregistry.Push(t, image)
}

// serveT runs `binderbuild serve` in-process with env until the test ends
// and returns its base URL.
func serveT(t testing.TB, env testEnv) string {
	t.Helper()
	env = env.with(map[string]string{"BINDERBUILD_LISTEN": "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env.lookup, io.Discard, pw) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		pw.Close()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		go io.Copy(io.Discard, pr) //nolint:errcheck // keep draining the log
		return "http://" + a
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start listening")
	}
	return ""
}

func stream(t testing.TB, url, accept string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("GET %s: %d %s, want 200 text/event-stream", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(body)
}

// TestServeTranscripts streams requests through the real wiring and
// compares the exact bytes.
func TestServeTranscripts(t *testing.T) {
	f := newFixture(t)
	env := f.env
	base := serveT(t, env)
	image := binderbuild.ImageName(f.prefix, "org-repo", headSHA)
	gitImage := binderbuild.ImageName(f.prefix, "https://example.com/org/repo", headSHA)
	f.push(t, gitImage)
	frame := func(json string) string { return "data: " + json + "\n\n" }
	tests := []struct {
		name, path, accept, want string
	}{
		{"cache hit", "/build/gh/org/repo/HEAD?build_only=true", "text/event-stream",
			frame(`{"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}`)},
		{"git sha cache hit", "/build/git/https%3A%2F%2Fexample.com%2Forg%2Frepo/" + headSHA + "?build_only=true", "text/event-stream",
			frame(`{"phase": "ready", "imageName": "` + gitImage + `", "message": "Done! Found built image\n"}`)},
		{"unknown provider", "/build/zz/org/repo/HEAD?build_only=true", "text/event-stream",
			frame(`{"phase": "failed", "message": "No provider found for prefix zz\n"}`)},
		{"bad spec", "/build/gh/org?build_only=true", "text/event-stream",
			frame(`{"phase": "failed", "message": "Spec is not of the form \"user/repo/ref\", provided: \"org\".\n"}`)},
		{"unresolvable ref", "/build/gh/org/repo/nosuchref?build_only=true", "text/event-stream",
			frame(`{"phase": "failed", "message": "Could not resolve ref for gh:org/repo/nosuchref. Double check your URL and that your repo is public.\n"}`)},
		{"missing accept", "/build/gh/org/repo/HEAD?build_only=true", "*/*",
			frame(`{"phase": "failed", "status_code": 400, "message": "Missing Accept header: text/event-stream\n"}`)},
		{"refused private host", "/build/git/http%3A%2F%2F127.0.0.1%3A9418%2Frepo/main?build_only=true", "text/event-stream",
			frame(`{"phase": "failed", "message": "Refusing to contact 127.0.0.1: it is a private or loopback address.\n"}`)},
		{"refused metadata host", "/build/git/http%3A%2F%2F169.254.169.254%2Flatest/main?build_only=true", "text/event-stream",
			frame(`{"phase": "failed", "message": "Refusing to contact 169.254.169.254: it is a private or loopback address.\n"}`)},
		{"refused Unicode loopback, full sha", "/build/git/https%3A%2F%2F%EF%BC%91%EF%BC%92%EF%BC%97%E3%80%820%E3%80%820%E3%80%821%2Fr/" + headSHA + "?build_only=true", "text/event-stream",
			frame(`{"phase": "failed", "message": "Refusing to contact 127.0.0.1: it is a private or loopback address.\n"}`)},
		{"refused IPv4-translated loopback, full sha", "/build/git/https%3A%2F%2F%5B%3A%3Affff%3A0%3A7f00%3A1%5D%2Fr/" + headSHA + "?build_only=true", "text/event-stream",
			frame(`{"phase": "failed", "message": "Refusing to contact ::ffff:0:7f00:1: it is a private or loopback address.\n"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stream(t, base+tc.path, tc.accept); got != tc.want {
				t.Errorf("GET %s:\n%q\nwant\n%q", tc.path, got, tc.want)
			}
		})
	}
}

// TestServeNoExecutor checks the build path without a cluster and without
// a container engine (DOCKER_HOST is a missing socket, see TestMain): one
// waiting event, then a failed event saying what to install.
func TestServeNoExecutor(t *testing.T) {
	base := serveT(t, newFixture(t).env)
	got := stream(t, base+"/build/git/https%3A%2F%2Fexample.com%2Forg%2Fother/"+headSHA+"?build_only=true", "text/event-stream")
	want := "data: " + `{"phase": "waiting", "message": "Waiting for build to start...\n"}` + "\n\n" +
		"data: " + `{"phase": "failed", "message": "` + strings.TrimSuffix(noEngineMessage(), "\n") + `\n"}` + "\n\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// TestWarmPathMakesNoUpstreamCalls repeats a cache hit and counts the
// requests reaching GitHub and the registry after the first.
func TestWarmPathMakesNoUpstreamCalls(t *testing.T) {
	f := newFixture(t)
	env := f.env
	base := serveT(t, env)
	url := base + "/build/gh/org/repo/HEAD?build_only=true"
	stream(t, url, "text/event-stream")
	gh, reg := f.github.calls.Load(), f.registry.calls.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { stream(t, url, "text/event-stream") })
	}
	wg.Wait()
	if d := f.github.calls.Load() - gh; d != 0 {
		t.Errorf("GitHub calls during 20 warm requests = %d, want 0", d)
	}
	if d := f.registry.calls.Load() - reg; d != 0 {
		t.Errorf("registry calls during 20 warm requests = %d, want 0", d)
	}
}

func TestServeHelpListsSettings(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"serve", "--help"}, newEnv().lookup, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"BINDERBUILD_LISTEN", "BINDERBUILD_BASE_URL", "BINDERBUILD_IMAGE_PREFIX", "BINDERBUILD_API_ONLY",
		"BINDERBUILD_HEARTBEAT_INTERVAL", "BINDERBUILD_GITHUB_API_URL", "BINDERBUILD_GITHUB_TOKEN", "BINDERBUILD_GITLAB_URL",
		"BINDERBUILD_REGISTRY_INSECURE_HOSTS", "BINDERBUILD_GIT_ALLOWED_HOSTS", "BINDERBUILD_BUILD_NODE_SELECTOR",
		"BINDERBUILD_BUILD_EPHEMERAL_STORAGE_REQUEST", "BINDERBUILD_CONCURRENT_BUILD_LIMIT", "BINDERBUILD_GC_"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("serve --help does not mention %s", v)
		}
	}
}

// BINDERBUILD_USE_REGISTRY=false means no registry even with a prefix:
// every request builds, and nothing asks the registry.
func TestUseRegistryFalse(t *testing.T) {
	cfg := config{UseRegistry: false}
	cfg.ImagePrefix = "registry.example.com/binder/"
	images, health, err := newImageChecker(cfg, func(string) string { return "" }, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := images.(noRegistry); !ok || health != nil {
		t.Errorf("newImageChecker with a prefix and UseRegistry=false = %T, %v, want noRegistry and no health check", images, health)
	}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct{ env, value, want string }{
		{"BINDERBUILD_HEARTBEAT_INTERVAL", "soon", `invalid BINDERBUILD_HEARTBEAT_INTERVAL="soon": time: invalid duration "soon"`},
		{"BINDERBUILD_API_ONLY", "maybe", `invalid BINDERBUILD_API_ONLY="maybe"`},
		{"BINDERBUILD_LISTEN", "8585", `invalid BINDERBUILD_LISTEN="8585": want host:port, e.g. :8585`},
		{"BINDERBUILD_GITHUB_API_URL", "ftp://x", `invalid BINDERBUILD_GITHUB_API_URL="ftp://x": want an http(s) URL`},
		{"BINDERBUILD_BUILD_MEMORY_LIMIT", "lots", `invalid BINDERBUILD_BUILD_MEMORY_LIMIT="lots"`},
		{"BINDERBUILD_EXECUTOR", "magic", `invalid BINDERBUILD_EXECUTOR="magic"`},
		{"BINDERBUILD_GC_SCHEDULE", "CRON_TZ=Europe/Berlin", `BINDERBUILD_GC_SCHEDULE`},
		{"BINDERBUILD_PER_CLIENT_BUILD_LIMIT", "-1", `invalid BINDERBUILD_PER_CLIENT_BUILD_LIMIT=-1`},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			env := newEnv()
			env.set(tc.env, tc.value)
			err := run(t.Context(), []string{"serve"}, env.lookup, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("serve with %s=%q: %v, want one line containing %q", tc.env, tc.value, err, tc.want)
			}
		})
	}
}
