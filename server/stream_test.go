package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
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
	for _, tc := range followCases {
		t.Run(tc.name, func(t *testing.T) {
			exec := &scriptExec{events: followLog, err: tc.err}
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

// TestRoundEndsCaughtUpClients: a parked client that takes the rest of a
// finished log in a round gets the result in the same round: nothing wakes
// the fan-out again but the next heartbeat (a race seen as a stream waiting
// 30 s before its ready event).
func TestRoundEndsCaughtUpClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	log := events.NewLog(0)
	for _, e := range followLog {
		log.Append(e)
	}
	log.Finish(nil)
	s := newStreams(t.Context(), time.Hour, time.Hour, func(context.Context, error, string) events.Event { return events.Message("ready", "done") })
	f := &fanout{log: log, wake: make(chan struct{}, 1)}
	var written int64 = -1
	clients := []*parked{{conn: conn, ended: func(n int64) { written = n }}}
	last := append(encodeChunk([]events.Event{events.Message("ready", "done")}), "0\r\n\r\n"...)
	s.writeRound(f, &clients, last, 1)
	if len(clients) != 0 || written != eventsSize(followLog)+1 {
		t.Errorf("after one round: %d clients open, %d bytes sent; want 0 open after %d bytes (the log, then the result)",
			len(clients), written, eventsSize(followLog)+1)
	}
}

// finishedBuilder answers every request with a build that has ended.
type finishedBuilder struct{ log *events.Log }

func (b finishedBuilder) Join(context.Context, binderbuild.BuildRequest) (*events.Log, bool, error) {
	return b.log, true, nil
}

// TestStreamFinishedBuild: a client that follows a build which has ended
// gets the whole log and the result at once, not at the next heartbeat
// (here an hour away).
func TestStreamFinishedBuild(t *testing.T) {
	log := events.NewLog(0)
	for _, e := range append([]events.Event{events.Waiting}, followLog...) {
		log.Append(e)
	}
	log.Finish(nil)
	deps := func(*testing.T) Deps { return Deps{Builder: finishedBuilder{log}} }
	forEachProtocol(t, Config{HeartbeatInterval: time.Hour}, deps, func(t *testing.T, s *streamServer) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		resp := s.open(t, ctx, "/build/gh/org/repo/HEAD?build_only=true")
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("the stream did not end in 10 s: %v after %q", err, body)
		}
		golden(t, "transcripts/build-success.sse", string(body))
	})
}
