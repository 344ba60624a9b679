package server

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/auth"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// fakeProvider is a provider whose behaviour each test sets.
type fakeProvider struct {
	prefix    string
	ParseFn   func(spec string) (binderbuild.Repo, error)
	ResolveFn func(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error)
}

func (f *fakeProvider) Prefix() string { return f.prefix }
func (f *fakeProvider) Display() any   { return map[string]string{"id": f.prefix} }
func (f *fakeProvider) Parse(spec string) (binderbuild.Repo, error) {
	return f.ParseFn(spec)
}
func (f *fakeProvider) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	return f.ResolveFn(ctx, repo)
}

// ghLike parses user/repo/ref and resolves through refs, a map ref → sha.
func ghLike(refs map[string]string) *fakeProvider {
	return &fakeProvider{
		prefix: "gh",
		ParseFn: func(spec string) (binderbuild.Repo, error) {
			parts := strings.SplitN(spec, "/", 3)
			if len(parts) != 3 {
				return binderbuild.Repo{}, errors.New(`Spec is not of the form "user/repo/ref", provided: "` + spec + `".`)
			}
			return binderbuild.Repo{Provider: "gh", ProviderName: "GitHub", Spec: spec,
				URL: "https://github.com/" + parts[0] + "/" + parts[1], Ref: parts[2],
				BuildSlug: parts[0] + "-" + parts[1]}, nil
		},
		ResolveFn: func(_ context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
			sha, ok := refs[repo.Ref]
			if !ok {
				return binderbuild.Resolved{}, binderbuild.ErrRefNotFound
			}
			return binderbuild.Resolved{Repo: repo, ResolvedRef: sha}, nil
		},
	}
}

type fakeImages struct {
	ExistsFn func(ctx context.Context, image string) (bool, error)
}

func (f fakeImages) Exists(ctx context.Context, image string) (bool, error) {
	return f.ExistsFn(ctx, image)
}

func present(images ...string) fakeImages {
	return fakeImages{ExistsFn: func(_ context.Context, image string) (bool, error) {
		for _, i := range images {
			if i == image {
				return true, nil
			}
		}
		return false, nil
	}}
}

// scriptExec is an executor that appends fixed events and ends with err.
type scriptExec struct {
	events []events.Event
	err    error
	gate   chan struct{} // when set, the build waits for it to close before finishing
	mu     sync.Mutex
	runs   int
}

func (e *scriptExec) Run(ctx context.Context, _ binderbuild.BuildRequest, log *events.Log) error {
	e.mu.Lock()
	e.runs++
	e.mu.Unlock()
	for _, ev := range e.events {
		log.Append(ev)
	}
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return e.err
}

const sha = "1479e0252b2e648bb755ee913292b79495931717"

func newTestServer(t *testing.T, cfg Config, deps Deps) *httptest.Server {
	t.Helper()
	if deps.Providers == nil {
		deps.Providers = []Provider{ghLike(map[string]string{"HEAD": sha, "main": sha})}
	}
	if deps.Images == nil {
		deps.Images = present()
	}
	if deps.Builder == nil {
		deps.Builder = builder.NewShared(t.Context(), builder.Unavailable("No build executor is configured.\n"), 0)
	}
	if cfg.ImagePrefix == "" {
		cfg.ImagePrefix = "registry.example.com/binder/"
	}
	ts := httptest.NewServer(New(t.Context(), cfg, deps))
	t.Cleanup(ts.Close)
	return ts
}

// get requests path with the event-stream Accept header and returns the body.
func get(t *testing.T, base, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
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
	return resp, string(body)
}

// golden compares got with testdata/<name>, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
	}
}

func TestBuildTranscripts(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	tests := []struct {
		name   string
		path   string
		header []string
		images ImageChecker
		cfg    Config
	}{
		{name: "cache-hit", path: "/build/gh/org/repo/HEAD?build_only=true", images: present(image)},
		{name: "cache-hit-build-only-uppercase", path: "/build/gh/org/repo/HEAD?build_only=TRUE", images: present(image)},
		{name: "unknown-provider", path: "/build/nope/org/repo/HEAD?build_only=true"},
		{name: "escaped-provider", path: "/build/g%68/org/repo/HEAD?build_only=true"},
		{name: "bad-spec", path: "/build/gh/org?build_only=true"},
		{name: "unresolvable-ref", path: "/build/gh/org/repo/nosuchref?build_only=true"},
		{name: "missing-accept", path: "/build/gh/org/repo/HEAD?build_only=true", header: []string{"Accept", "*/*"}},
		{name: "accept-list", path: "/build/gh/org/repo/HEAD?build_only=true", header: []string{"Accept", "text/html, TEXT/EVENT-STREAM;q=0.9"}, images: present(image)},
		{name: "launch-refused", path: "/build/gh/org/repo/HEAD", images: present(image)},
		{name: "build-only-not-api-mode", path: "/build/gh/org/repo/HEAD?build_only=true", cfg: Config{APIOnly: false}, images: present(image)},
		{name: "no-executor", path: "/build/gh/org/repo/HEAD?build_only=true"},
		{name: "registry-down", path: "/build/gh/org/repo/HEAD?build_only=true", images: fakeImages{ExistsFn: func(context.Context, string) (bool, error) {
			return false, errors.New("dial tcp 10.0.0.1:443: connection refused")
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if tc.name != "build-only-not-api-mode" {
				cfg.APIOnly = true
			}
			ts := newTestServer(t, cfg, Deps{Images: tc.images})
			resp, body := get(t, ts.URL, tc.path, tc.header...)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type = %q, want text/event-stream", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", cc)
			}
			golden(t, "transcripts/"+tc.name+".sse", body)
		})
	}
}

func TestWrongMethod(t *testing.T) {
	ts := newTestServer(t, Config{APIOnly: true}, Deps{})
	resp, err := http.Post(ts.URL+"/build/gh/org/repo/HEAD", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `data: {"phase": "failed", "status_code": 405, "message": "Method Not Allowed\n"}` + "\n\n"
	if string(body) != want || resp.StatusCode != 200 {
		t.Errorf("POST = %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

func TestRawSpecReachesProvider(t *testing.T) {
	var got []string
	var mu sync.Mutex
	p := ghLike(nil)
	parse := p.ParseFn
	p.ParseFn = func(spec string) (binderbuild.Repo, error) {
		mu.Lock()
		got = append(got, spec)
		mu.Unlock()
		return parse(spec)
	}
	ts := newTestServer(t, Config{APIOnly: true, BaseURL: "/services/binder"}, Deps{Providers: []Provider{p}})
	for _, path := range []string{
		"/services/binder/build/gh/org/repo/feature%2Fx?build_only=true",
		"/services/binder/build/gh/org/repo/100%25?build_only=true",
		"/services/binder/build/gh/org/repo/a/b//?build_only=true",
	} {
		get(t, ts.URL, path)
	}
	want := []string{"org/repo/feature%2Fx", "org/repo/100%25", "org/repo/a/b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("specs = %q, want %q", got, want)
	}
}

func TestGitHubFallback(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	for _, ref := range []string{"master", "main"} {
		t.Run(ref, func(t *testing.T) {
			ts := newTestServer(t, Config{APIOnly: true}, Deps{
				Providers: []Provider{ghLike(map[string]string{"HEAD": sha})},
				Images:    present(image),
			})
			_, body := get(t, ts.URL, "/build/gh/org/repo/"+ref+"?build_only=true")
			golden(t, "transcripts/fallback-"+ref+".sse", body)
		})
	}
	t.Run("still-missing", func(t *testing.T) {
		ts := newTestServer(t, Config{APIOnly: true}, Deps{Providers: []Provider{ghLike(nil)}})
		_, body := get(t, ts.URL, "/build/gh/org/repo/master?build_only=true")
		golden(t, "transcripts/fallback-still-missing.sse", body)
	})
}

// followCase is a build that logs followLog and ends with err; its
// transcript is testdata/transcripts/<name>.sse.
type followCase struct {
	name string
	err  error
}

var (
	followLog = []events.Event{
		events.FromLogLine([]byte(`{"phase": "fetching", "message": "Cloning into '/tmp/x'...\n"}`)),
		events.FromLogLine([]byte("plain text line")),
		events.FromLogLine([]byte(`{"message": "Step 1/3 : FROM scratch", "phase": "building"}`)),
	}
	followCases = []followCase{
		{name: "build-success"},
		{name: "build-failed-r2d-line", err: &events.Failure{Cause: events.CauseFailed,
			Event: events.FromLogLine([]byte(`{"phase": "failed", "message": "Error during build: boom\n"}`))}},
		{name: "build-oom", err: events.Fail(events.CauseOOM, "Build failed: the build pod ran out of memory (OOMKilled).\n")},
		{name: "build-internal-error", err: errors.New("watch pods: secret token abc")},
	}
)

func TestBuildFollow(t *testing.T) {
	for _, tc := range followCases {
		t.Run(tc.name, func(t *testing.T) {
			exec := &scriptExec{events: followLog, err: tc.err}
			ts := newTestServer(t, Config{APIOnly: true}, Deps{Builder: builder.NewShared(t.Context(), exec, 0)})
			_, body := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true")
			golden(t, "transcripts/"+tc.name+".sse", body)
		})
	}
}

// TestSharedBuild checks that concurrent requests share one build and that
// a late joiner replays the whole log.
func TestSharedBuild(t *testing.T) {
	gate := make(chan struct{})
	exec := &scriptExec{events: []events.Event{events.Message("building", "step\n")}, gate: gate}
	ts := newTestServer(t, Config{APIOnly: true}, Deps{Builder: builder.NewShared(t.Context(), exec, time.Minute)})
	const n = 20
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, bodies[i] = get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true") })
	}
	waitFor(t, func() bool { exec.mu.Lock(); defer exec.mu.Unlock(); return exec.runs == 1 })
	close(gate)
	wg.Wait()
	_, late := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true")
	for i, b := range append(bodies, late) {
		if b != bodies[0] {
			t.Errorf("body %d = %q, want %q", i, b, bodies[0])
		}
	}
	golden(t, "transcripts/shared-build.sse", bodies[0])
	if exec.runs != 1 {
		t.Errorf("executor ran %d times, want 1", exec.runs)
	}
}

// TestHeartbeat checks the heartbeat bytes while a build waits, and that a
// client leaving does not stop the build.
func TestHeartbeat(t *testing.T) {
	gate := make(chan struct{})
	exec := &scriptExec{gate: gate}
	shared := builder.NewShared(t.Context(), exec, time.Minute)
	ts := newTestServer(t, Config{APIOnly: true, HeartbeatInterval: 10 * time.Millisecond}, Deps{Builder: shared})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/build/gh/org/repo/HEAD?build_only=true", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	chunk := make([]byte, 256)
	for !strings.Contains(buf.String(), ":heartbeat\n\n:heartbeat\n\n") {
		n, err := resp.Body.Read(chunk)
		buf.Write(chunk[:n])
		if err != nil {
			t.Fatalf("read: %v after %q", err, buf.String())
		}
	}
	want := "data: " + string(events.Waiting.Data) + "\n\n:heartbeat\n\n"
	if !strings.HasPrefix(buf.String(), want) {
		t.Errorf("stream starts %q, want prefix %q", buf.String(), want)
	}
	cancel()
	resp.Body.Close()
	if shared.Running() != 1 {
		t.Errorf("running builds after client left = %d, want 1", shared.Running())
	}
	close(gate)
}

func TestInfoRoutes(t *testing.T) {
	healthy := HealthCheck{Service: "Docker registry", Check: func(context.Context) error { return nil }}
	broken := HealthCheck{Service: "Kubernetes API", Check: func(context.Context) error { return errors.New("connection refused") }}
	tests := []struct {
		name       string
		path       string
		checks     []HealthCheck
		wantStatus int
		wantBody   string
	}{
		{name: "versions", path: "/versions", wantStatus: 200, wantBody: `"builder_info":{"build_image":"quay.io/jupyterhub/repo2docker:2024.07.0"},"binderhub":"v1.2.3","builder":"quay.io/jupyterhub/repo2docker:2024.07.0","binderbuild":"v1.2.3"`},
		{name: "repoproviders", path: "/api/repoproviders", wantStatus: 200, wantBody: `[{"id":"gh"}]`},
		{name: "health-ok", path: "/health", checks: []HealthCheck{healthy}, wantStatus: 200, wantBody: `{"ok":true,"checks":[{"service":"Docker registry","ok":true,`},
		{name: "health-broken", path: "/health", checks: []HealthCheck{healthy, broken}, wantStatus: 503, wantBody: `{"service":"Kubernetes API","ok":false,`},
		{name: "health-optional", path: "/health", checks: []HealthCheck{{Service: "Pod quota", Optional: true, Check: broken.Check}}, wantStatus: 200, wantBody: `"_ignore_failure":true`},
		{name: "root", path: "/", wantStatus: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Config{}, Deps{Health: tc.checks, Version: "v1.2.3", BuildImage: "quay.io/jupyterhub/repo2docker:2024.07.0"})
			resp, err := http.Get(ts.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("GET %s = %d %s, want %d containing %s", tc.path, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/": "/", "/services/binder": "/services/binder/", "services/binder/": "/services/binder/", "//a//": "/a/"} {
		if got := NormalizeBaseURL(in); got != want {
			t.Errorf("NormalizeBaseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDisconnectFreesClient checks that a waiting client that goes away is
// dropped at the next heartbeat while its build goes on.
func TestDisconnectFreesClient(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	shared := builder.NewShared(t.Context(), &scriptExec{gate: gate}, time.Minute)
	srv := New(t.Context(), Config{APIOnly: true, HeartbeatInterval: 10 * time.Millisecond, ImagePrefix: "r/"},
		Deps{Providers: []Provider{ghLike(map[string]string{"HEAD": sha})}, Images: present(), Builder: shared})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET /build/gh/org/repo/HEAD?build_only=true HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	waitFor(t, func() bool { return srv.streams.parked.Load() == 1 })
	conn.Close()
	waitFor(t, func() bool { return srv.streams.parked.Load() == 0 })
	if shared.Running() != 1 {
		t.Errorf("running builds = %d, want 1: the build must outlive its client", shared.Running())
	}
}

// A client that never reads delays nobody else: a client that reads gets
// the whole build while twenty that read nothing are still connected.
func TestSlowClientsDelayNobody(t *testing.T) {
	line := strings.Repeat("x", 1000)
	var evs []events.Event // 2 MB: more than the sockets of the slow clients hold
	for range 2000 {
		evs = append(evs, events.Message("building", line))
	}
	gate := make(chan struct{})
	shared := builder.NewShared(t.Context(), &scriptExec{events: evs, gate: gate}, time.Minute)
	srv := New(t.Context(), Config{APIOnly: true, ImagePrefix: "r/", ClientStallTimeout: time.Hour},
		Deps{Providers: []Provider{ghLike(map[string]string{"HEAD": sha})}, Images: present(), Builder: shared})
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener = smallSendBuffers{ts.Listener}
	ts.Start()
	defer ts.Close()
	const slow = 20
	smallBuffer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	for range slow {
		conn, err := smallBuffer.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET /build/gh/org/repo/HEAD?build_only=true HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	}
	waitFor(t, func() bool { return srv.streams.parked.Load() == slow })
	got := make(chan []string)
	go func() { got <- readEvents(t, ts.URL+"/build/gh/org/repo/HEAD?build_only=true") }()
	waitFor(t, func() bool { return srv.streams.parked.Load() == slow+1 })
	close(gate)
	frames := <-got
	if len(frames) != len(evs)+2 || !strings.Contains(frames[len(frames)-1], `"phase": "ready"`) {
		t.Fatalf("the reading client got %d events ending with %.100s, want %d ending with ready", len(frames), frames[len(frames)-1], len(evs)+2)
	}
	if n := srv.streams.parked.Load(); n != slow {
		t.Errorf("%d clients still connected when the reading one was done, want the %d slow ones: it waited for them", n, slow)
	}
}

// smallSendBuffers keeps the kernel from buffering a whole build log for a
// client that does not read.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

// readEvents streams a /build request and returns its data lines.
func readEvents(t *testing.T, url string) []string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Error(err)
		return nil
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	var frames []string
	for _, f := range strings.Split(string(body), "\n\n") {
		if d, ok := strings.CutPrefix(f, "data: "); ok {
			frames = append(frames, d)
		}
	}
	return frames
}

// One client may have only so many builds of its own running; joining
// another's build does not count, and a finished build frees its place.
func TestPerClientBuildLimit(t *testing.T) {
	gate := make(chan struct{})
	shared := builder.NewShared(t.Context(), &scriptExec{gate: gate}, 0, builder.WithOwnerLimit(1))
	refs := map[string]string{"a": sha, "b": strings.Repeat("b", 40)}
	srv := New(t.Context(), Config{APIOnly: true, ImagePrefix: "r/"},
		Deps{Providers: []Provider{ghLike(refs)}, Images: present(), Builder: shared})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	first := make(chan []string)
	go func() { first <- readEvents(t, ts.URL+"/build/gh/org/repo/a?build_only=true") }()
	waitFor(t, func() bool { return srv.streams.parked.Load() == 1 })
	joined := make(chan []string)
	go func() { joined <- readEvents(t, ts.URL+"/build/gh/org/repo/a?build_only=true") }()
	waitFor(t, func() bool { return srv.streams.parked.Load() == 2 })
	refused := readEvents(t, ts.URL+"/build/gh/org/repo/b?build_only=true")
	want := `{"phase": "failed", "status_code": 429, "message": "You already have 1 builds running, the most allowed at once. Wait for one of them to finish, then try again.\n"}`
	if len(refused) != 1 || refused[0] != want {
		t.Errorf("second build of the same client: %q, want %q", refused, want)
	}
	close(gate)
	for _, ch := range []chan []string{first, joined} {
		if evs := <-ch; !strings.Contains(evs[len(evs)-1], `"phase": "ready"`) {
			t.Errorf("build of the first request ended with %s, want ready", evs[len(evs)-1])
		}
	}
	shared.Wait()
	if evs := readEvents(t, ts.URL+"/build/gh/org/repo/b?build_only=true"); !strings.Contains(evs[len(evs)-1], `"phase": "ready"`) {
		t.Errorf("build after the first ended: %s, want ready", evs[len(evs)-1])
	}
}

// /health never shows credentials of configured URLs; with a metrics token
// (or authentication on) only its holder sees /metrics and the details of
// /health, others see ok or not ok.
func TestHealthAndMetricsProtected(t *testing.T) {
	hubDown := HealthCheck{Service: "JupyterHub", Check: func(context.Context) error {
		return errors.New(`Get "http://svc:s3cretpw@hub:8081/hub/api/": dial tcp: connection refused; password s3cretpw`)
	}}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "metric 1\n") })
	tokens := writeTokens(t, "alice tok-alice\n")
	ta, err := auth.LoadTokenAuth(tokens)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		cfg         Config
		auth        Authenticator
		bearer      string
		wantDetails bool
		wantMetrics int
	}{
		{"open", Config{}, nil, "", true, 200},
		{"token, without it", Config{MetricsToken: "mtok-123"}, nil, "", false, 401},
		{"token, wrong", Config{MetricsToken: "mtok-123"}, nil, "nope", false, 401},
		{"token, with it", Config{MetricsToken: "mtok-123"}, nil, "mtok-123", true, 200},
		{"auth on, no token", Config{}, ta, "", false, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.cfg, Deps{Health: []HealthCheck{hubDown}, MetricsHandler: metrics, Auth: tc.auth,
				Redactor: events.NewRedactor("s3cretpw")})
			h := []string{}
			if tc.bearer != "" {
				h = []string{"Authorization", "Bearer " + tc.bearer}
			}
			resp, body := get(t, ts.URL, "/health", h...)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/health status %d, want 503", resp.StatusCode)
			}
			if strings.Contains(body, "s3cretpw") {
				t.Errorf("/health shows a credential: %s", body)
			}
			if got := strings.Contains(body, `"checks"`); got != tc.wantDetails {
				t.Errorf("/health = %s: details shown %v, want %v", body, got, tc.wantDetails)
			}
			if !tc.wantDetails && strings.TrimSpace(body) != `{"ok":false}` {
				t.Errorf("/health without details = %s, want {\"ok\":false}", body)
			}
			if resp, _ := get(t, ts.URL, "/metrics", h...); resp.StatusCode != tc.wantMetrics {
				t.Errorf("/metrics status %d, want %d", resp.StatusCode, tc.wantMetrics)
			}
		})
	}
}

// TestSingleEventAnswersInOneWrite: a cache hit and a failure are the
// stream's only event, written unflushed, so that net/http sends headers
// and body at once with a Content-Length instead of chunks.
func TestSingleEventAnswersInOneWrite(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	ts := newTestServer(t, Config{APIOnly: true}, Deps{Images: present(image)})
	for _, path := range []string{"/build/gh/org/repo/HEAD?build_only=true", "/build/nope/org/repo/HEAD?build_only=true"} {
		resp, body := get(t, ts.URL, path)
		if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
			t.Errorf("%s: Content-Length %d, Transfer-Encoding %q for a body of %d bytes (%q), want one write with its length",
				path, resp.ContentLength, resp.TransferEncoding, len(body), body)
		}
	}
}
