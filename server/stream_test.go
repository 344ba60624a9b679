package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/testlog"
)

// protocols are the transports every test of the streams runs over:
// HTTP/1.1, whose connections are parked and written by a build's fan-out,
// and HTTP/2 (over TLS, as browsers speak it), followed on the handler's
// goroutine.
var protocols = []struct {
	name  string
	major int
	start func(h http.Handler) *httptest.Server
}{
	{"HTTP/1.1", 1, httptest.NewServer},
	{"HTTP/2", 2, func(h http.Handler) *httptest.Server {
		ts := httptest.NewUnstartedServer(h)
		ts.EnableHTTP2 = true
		ts.StartTLS()
		return ts
	}},
}

// streamServer is a server under test over one protocol.
type streamServer struct {
	srv   *Server
	ts    *httptest.Server
	major int
}

// forEachProtocol runs test over every protocol with a server of cfg and
// deps (defaults as newTestServer's).
func forEachProtocol(t *testing.T, cfg Config, deps func(t *testing.T) Deps, test func(t *testing.T, s *streamServer)) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			d := deps(t)
			if d.Providers == nil {
				d.Providers = []Provider{ghLike(map[string]string{"HEAD": sha, "main": sha})}
			}
			if d.Images == nil {
				d.Images = present()
			}
			cfg.APIOnly = true
			if cfg.ImagePrefix == "" {
				cfg.ImagePrefix = "registry.example.com/binder/"
			}
			srv := New(t.Context(), cfg, d)
			ts := p.start(srv)
			t.Cleanup(ts.Close)
			test(t, &streamServer{srv: srv, ts: ts, major: p.major})
		})
	}
}

// open sends a /build request for path and checks the protocol it got.
func (s *streamServer) open(t *testing.T, ctx context.Context, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != s.major {
		t.Fatalf("response over %s, want HTTP/%d", resp.Proto, s.major)
	}
	return resp
}

// body reads the whole stream of a /build request for path.
func (s *streamServer) body(t *testing.T, path string) string {
	t.Helper()
	resp := s.open(t, t.Context(), path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read stream: %v after %q", err, b)
	}
	return string(b)
}

// readUntil reads resp's body until it contains want, and returns it.
func readUntil(t *testing.T, resp *http.Response, want string) string {
	t.Helper()
	var buf bytes.Buffer
	chunk := make([]byte, 256)
	for !strings.Contains(buf.String(), want) {
		n, err := resp.Body.Read(chunk)
		buf.Write(chunk[:n])
		if err != nil {
			t.Fatalf("read: %v after %q, want %q", err, buf.String(), want)
		}
	}
	return buf.String()
}

func sharedBuilder(exec builder.Executor) func(t *testing.T) Deps {
	return func(t *testing.T) Deps { return Deps{Builder: builder.NewShared(t.Context(), exec, time.Minute)} }
}

// TestStreamTranscripts: a followed build's bytes are the same whatever
// the protocol: the transcripts of TestBuildFollow.
func TestStreamTranscripts(t *testing.T) {
	log1 := events.FromLogLine([]byte(`{"phase": "fetching", "message": "Cloning into '/tmp/x'...\n"}`))
	log2 := events.FromLogLine([]byte("plain text line"))
	log3 := events.FromLogLine([]byte(`{"message": "Step 1/3 : FROM scratch", "phase": "building"}`))
	tests := []struct {
		name string
		err  error
	}{
		{name: "build-success"},
		{name: "build-failed-r2d-line", err: &events.Failure{Cause: events.CauseFailed,
			Event: events.FromLogLine([]byte(`{"phase": "failed", "message": "Error during build: boom\n"}`))}},
		{name: "build-oom", err: events.Fail(events.CauseOOM, "Build failed: the build pod ran out of memory (OOMKilled).\n")},
		{name: "build-internal-error", err: errors.New("watch pods: secret token abc")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exec := &scriptExec{events: []events.Event{log1, log2, log3}, err: tc.err}
			forEachProtocol(t, Config{}, sharedBuilder(exec), func(t *testing.T, s *streamServer) {
				golden(t, "transcripts/"+tc.name+".sse", s.body(t, "/build/gh/org/repo/HEAD?build_only=true"))
			})
		})
	}
}

// TestStreamShared: clients that follow a build while it runs and one
// that comes after it ended get the same bytes, from one build.
func TestStreamShared(t *testing.T) {
	var gate chan struct{}
	var exec *scriptExec
	deps := func(t *testing.T) Deps {
		gate = make(chan struct{})
		exec = &scriptExec{events: []events.Event{events.Message("building", "step\n")}, gate: gate}
		return Deps{Builder: builder.NewShared(t.Context(), exec, time.Minute)}
	}
	forEachProtocol(t, Config{}, deps, func(t *testing.T, s *streamServer) {
		const n = 5
		bodies := make(chan string, n)
		for range n {
			go func() { bodies <- s.body(t, "/build/gh/org/repo/HEAD?build_only=true") }()
		}
		waitFor(t, func() bool { return s.srv.streams.following.Load() == n })
		close(gate)
		got := []string{s.body(t, "/build/gh/org/repo/HEAD?build_only=true")}
		for range n {
			got = append(got, <-bodies)
		}
		for _, b := range got {
			golden(t, "transcripts/shared-build.sse", b)
		}
		exec.mu.Lock()
		defer exec.mu.Unlock()
		if exec.runs != 1 {
			t.Errorf("executor ran %d times, want 1", exec.runs)
		}
	})
}

// TestStreamHeartbeat: a waiting client gets heartbeats; when it leaves,
// it is freed while its build goes on.
func TestStreamHeartbeat(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	var shared *builder.Shared
	deps := func(t *testing.T) Deps {
		shared = builder.NewShared(t.Context(), &scriptExec{gate: gate}, time.Minute)
		return Deps{Builder: shared}
	}
	forEachProtocol(t, Config{HeartbeatInterval: 10 * time.Millisecond}, deps, func(t *testing.T, s *streamServer) {
		ctx, cancel := context.WithCancel(t.Context())
		resp := s.open(t, ctx, "/build/gh/org/repo/HEAD?build_only=true")
		got := readUntil(t, resp, ":heartbeat\n\n:heartbeat\n\n")
		want := "data: " + string(events.Waiting.Data) + "\n\n:heartbeat\n\n:heartbeat\n\n"
		if !strings.HasPrefix(got, want) {
			t.Errorf("stream = %q, want prefix %q", got, want)
		}
		cancel()
		resp.Body.Close()
		waitFor(t, func() bool { return s.srv.streams.following.Load() == 0 })
		if shared.Running() != 1 {
			t.Errorf("running builds after the client left = %d, want 1", shared.Running())
		}
	})
}

// TestStreamAccessLog: a stream's access log line is written when the
// stream ends, with the bytes of its body, whatever the protocol.
func TestStreamAccessLog(t *testing.T) {
	var buf *testlog.Buffer
	var gate chan struct{}
	deps := func(t *testing.T) Deps {
		buf, gate = &testlog.Buffer{}, make(chan struct{})
		exec := &scriptExec{events: []events.Event{events.Message("building", "step\n")}, gate: gate}
		return Deps{Builder: builder.NewShared(t.Context(), exec, time.Minute), Log: slog.New(slog.NewJSONHandler(buf, nil))}
	}
	forEachProtocol(t, Config{}, deps, func(t *testing.T, s *streamServer) {
		resp := s.open(t, t.Context(), "/build/gh/org/repo/HEAD?build_only=true")
		defer resp.Body.Close()
		head := readUntil(t, resp, "step")
		if strings.Contains(buf.String(), `"msg":"request"`) {
			t.Errorf("request logged while its stream is open:\n%s", buf.String())
		}
		close(gate)
		rest, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Contains(buf.String(), `"msg":"request"`) })
		want := `"path":"/build/gh/org/repo/HEAD?build_only=true","status":200,"bytes":` + strconv.Itoa(len(head)+len(rest)) + ","
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	})
}

// TestStreamServerStop: open streams end when the server's context ends.
func TestStreamServerStop(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			gate := make(chan struct{})
			defer close(gate)
			ctx, stop := context.WithCancel(t.Context())
			srv := New(ctx, Config{APIOnly: true, ImagePrefix: "r/"}, Deps{Providers: []Provider{ghLike(map[string]string{"HEAD": sha})},
				Images: present(), Builder: builder.NewShared(t.Context(), &scriptExec{gate: gate}, time.Minute)})
			ts := p.start(srv)
			defer ts.Close()
			s := &streamServer{srv: srv, ts: ts, major: p.major}
			resp := s.open(t, t.Context(), "/build/gh/org/repo/HEAD?build_only=true")
			defer resp.Body.Close()
			readUntil(t, resp, "data: ")
			stop()
			_, _ = io.Copy(io.Discard, resp.Body) // ends, cleanly or not
			waitFor(t, func() bool { return srv.streams.following.Load() == 0 })
		})
	}
}

// TestStreamLaunch: a launch after a build streams and emits its launch
// event the same way over every protocol.
func TestStreamLaunch(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	step := events.Message("building", "Step 1/1\n")
	var rec *recorder
	deps := func(t *testing.T) Deps {
		rec = &recorder{}
		return Deps{Launcher: &fakeLauncher{LaunchFn: started, retries: 4}, Events: rec,
			Builder: builder.NewShared(t.Context(), &scriptExec{events: []events.Event{step}}, 0)}
	}
	forEachProtocol(t, Config{}, deps, func(t *testing.T, s *streamServer) {
		resp := s.open(t, t.Context(), "/build/gh/org/repo/HEAD")
		defer resp.Body.Close()
		got := readUntil(t, resp, `"phase": "ready"`)
		want := "data: " + string(events.Waiting.Data) + "\n\ndata: " + string(step.Data) +
			"\n\ndata: {\"phase\": \"built\", \"message\": \"Built image, launching...\\n\", \"imageName\": \"" + image +
			"\"}\n\ndata: {\"phase\": \"launching\", \"message\": \"Launching server...\\n\"}\n\n"
		if !strings.HasPrefix(got, want) {
			t.Errorf("stream = %q, want prefix %q", got, want)
		}
		host := strings.TrimPrefix(strings.TrimPrefix(s.ts.URL, "http://"), "https://")
		waitLaunches(t, rec, []events.Launch{{Provider: "GitHub", Spec: "org/repo/HEAD", Ref: sha, Status: "success", Origin: host}})
	})
}
