package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testlog"
)

const cliImage = "registry.test/binder/org-2drepo-abc123:0123456789abcdef0123456789abcdef01234567"

// A scripted /build stream: the CLI is the unit under test here.
var (
	cliWaiting  = `{"phase": "waiting", "message": "Waiting for build to start...\n"}`
	cliPicked   = `{"message": "Picked Git content provider.\n"}`
	cliFetching = `{"message": "Cloning into '/tmp/repo2docker1'...\n", "phase": "fetching"}`
	cliBuilding = `{"message": "Step 1/3 : FROM docker.io/library/buildpack-deps:jammy", "phase": "building"}`
	cliColour   = `{"message": "\u001b[32mSuccessfully built 3f6b3b5b1c2d\u001b[0m\n", "phase": "building"}`
	cliUnknown  = `{"phase": "unknown", "message": "plain output line\n"}`
	cliPush1    = `{"message": "Pushing image\n", "progress": {"aaa": {"current": 1000000, "total": 2000000}, "bbb": "Layer already exists"}, "layers": {}, "phase": "pushing"}`
	cliPush2    = `{"message": "Pushing image\n", "progress": {"aaa": {"current": 2000000, "total": 2000000}, "bbb": "Layer already exists"}, "layers": {}, "phase": "pushing"}`
	cliPushed   = `{"message": "Successfully pushed ` + cliImage + `", "phase": "pushing"}`
	cliReady    = `{"phase": "ready", "message": "Done! Image built\n", "imageName": "` + cliImage + `"}`
	cliFailed   = `{"phase": "failed", "message": "Build failed: repo2docker exited with code 2.\nLast log lines:\nStep 1/3 : FROM docker.io/library/buildpack-deps:jammy\n"}`
	cliForbid   = `{"phase": "failed", "status_code": 403, "message": "Forbidden\n"}`
)

var cliSuccess = []string{cliWaiting, cliPicked, cliFetching, cliBuilding, cliColour, cliUnknown, cliPush1, cliPush2, cliPushed, cliReady}

// scriptedServer serves /services/binder/build/... with the events, then
// ends the stream; it records the requests.
type scriptedServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newScriptedServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *scriptedServer {
	t.Helper()
	s := &scriptedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptedServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func writeEvents(w http.ResponseWriter, evs ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range evs {
		fmt.Fprintf(w, "data: %s\n\n", e)
		w.(http.Flusher).Flush()
	}
}

func eventsServer(t *testing.T, evs ...string) *scriptedServer {
	return newScriptedServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ":heartbeat\n\n")
		writeEvents(w, evs...)
	})
}

func noEnv(string) string { return "" }

func runBuildCommand(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = buildCommand(t.Context(), args, getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestBuildCommandSuccess(t *testing.T) {
	srv := eventsServer(t, cliSuccess...)
	stdout, stderr, err := runBuildCommand(t, noEnv, "gh/org/repo/HEAD", "--server", srv.URL+"/services/binder")
	if err != nil {
		t.Fatalf("build: %v\nstderr: %s", err, stderr)
	}
	want := `==> waiting
Waiting for build to start...
Picked Git content provider.
==> fetching
Cloning into '/tmp/repo2docker1'...
==> building
Step 1/3 : FROM docker.io/library/buildpack-deps:jammy
Successfully built 3f6b3b5b1c2d
plain output line
==> pushing
Pushing image
Successfully pushed ` + cliImage + `
==> ready
Done! Image built
` + cliImage + "\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if got := r.URL.RequestURI(); got != "/services/binder/build/gh/org/repo/HEAD?build_only=true" {
		t.Errorf("request URI = %q, want /services/binder/build/gh/org/repo/HEAD?build_only=true", got)
	}
	if got := r.Header.Get("Accept"); got != "text/event-stream" {
		t.Errorf("Accept = %q, want text/event-stream", got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none without a token", got)
	}
}

func TestBuildCommandQuiet(t *testing.T) {
	srv := eventsServer(t, cliSuccess...)
	// Flags after the argument, server from the environment.
	env := func(k string) string {
		if k == "BINDERBUILD_SERVER" {
			return srv.URL
		}
		return ""
	}
	stdout, _, err := runBuildCommand(t, env, "gh/org/repo/HEAD", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != cliImage+"\n" {
		t.Errorf("stdout = %q, want only the image name", stdout)
	}
}

func TestBuildCommandJSON(t *testing.T) {
	srv := eventsServer(t, cliSuccess...)
	stdout, _, err := runBuildCommand(t, noEnv, "--json", "--server", srv.URL, "gh/org/repo/HEAD")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if strings.Join(lines, "\n") != strings.Join(cliSuccess, "\n") {
		t.Errorf("stdout:\n%s\nwant the events, one per line:\n%s", stdout, strings.Join(cliSuccess, "\n"))
	}
	for i, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %d is not JSON: %s", i+1, l)
		}
	}
}

func TestBuildCommandFailure(t *testing.T) {
	srv := eventsServer(t, cliWaiting, cliFetching, cliBuilding, cliFailed)
	for _, args := range [][]string{{"gh/org/repo/HEAD"}, {"gh/org/repo/HEAD", "--json"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, _, err := runBuildCommand(t, noEnv, append(args, "--server", srv.URL)...)
			var bf buildFailed
			if !errors.As(err, &bf) {
				t.Fatalf("err = %v (%T), want buildFailed", err, err)
			}
			want := "build failed: repo2docker exited with code 2.\nLast log lines:\nStep 1/3 : FROM docker.io/library/buildpack-deps:jammy"
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			if !strings.Contains(stdout, "Step 1/3") || strings.Contains(stdout, "registry.test") {
				t.Errorf("stdout = %q, want the log and no image name", stdout)
			}
		})
	}
}

func TestBuildCommandAuth(t *testing.T) {
	const token = "t0ken"
	srv := newScriptedServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer " + token:
			writeEvents(w, cliWaiting, cliReady)
		case "Bearer http-403":
			http.Error(w, "forbidden", http.StatusForbidden)
		default:
			writeEvents(w, cliForbid)
		}
	})
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		want  string // error; empty for success
		image bool
	}{
		{"no token", nil, nil, "authentication required: the server refused the build (403 Forbidden): pass a token with --token or BINDERBUILD_TOKEN", false},
		{"wrong token", nil, []string{"--token", "nope"}, "authentication required: the server refused the build (403 Forbidden): the token was not accepted", false},
		{"HTTP 403", nil, []string{"--token", "http-403"}, "authentication required: the server refused the build (403 Forbidden): the token was not accepted", false},
		{"token flag", nil, []string{"--token", token}, "", true},
		{"token from environment", map[string]string{"BINDERBUILD_TOKEN": token}, nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) string { return tc.env[k] }
			stdout, _, err := runBuildCommand(t, env, append([]string{"gh/org/repo/HEAD", "--quiet", "--server", srv.URL}, tc.args...)...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("build: %v", err)
				}
			} else {
				var bf buildFailed
				if !errors.As(err, &bf) || err.Error() != tc.want {
					t.Fatalf("err = %v, want buildFailed %q", err, tc.want)
				}
			}
			if got := strings.TrimSpace(stdout) == cliImage; got != tc.image {
				t.Errorf("stdout = %q, image printed %v, want %v", stdout, got, tc.image)
			}
		})
	}
}

func TestBuildCommandConnectionDrop(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		want   string
	}{
		{"connection cut", func(w http.ResponseWriter, r *http.Request) {
			writeEvents(w, cliWaiting, cliFetching)
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			buf.Flush()
			conn.Close() // mid-chunk: no terminating chunk
		}, "the connection to %s/ ended before the build finished (last phase: fetching): unexpected EOF; the build may still be running: run the same command again to follow it"},
		{"stream ended", func(w http.ResponseWriter, r *http.Request) {
			writeEvents(w, cliWaiting, cliFetching, cliBuilding)
		}, "the connection to %s/ ended before the build finished (last phase: building); the build may still be running: run the same command again to follow it"},
		{"nothing sent", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
		}, "the connection to %s/ ended before the build finished; the build may still be running: run the same command again to follow it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptedServer(t, tc.handle)
			stdout, _, err := runBuildCommand(t, noEnv, "gh/org/repo/HEAD", "--server", srv.URL)
			var lost streamLost
			if !errors.As(err, &lost) {
				t.Fatalf("err = %v (%T), want streamLost", err, err)
			}
			if want := fmt.Sprintf(tc.want, srv.URL); err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			if strings.Contains(stdout, "registry.test") {
				t.Errorf("stdout = %q, want no image name", stdout)
			}
		})
	}
}

func TestBuildCommandServerErrors(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
		want   string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "answered 404 Not Found"},
		{"not a stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>")
		}, `answered with "text/html", not an event stream`},
		{"refused with status", func(w http.ResponseWriter, r *http.Request) {
			writeEvents(w, `{"phase": "failed", "status_code": 429, "message": "Rate limit exceeded. Try again in 60 seconds.\n"}`)
		}, "the server refused the build (429): Rate limit exceeded. Try again in 60 seconds."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptedServer(t, tc.handle)
			_, _, err := runBuildCommand(t, noEnv, "gh/org/repo/HEAD", "--server", srv.URL)
			var ue usageError
			if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a non-usage error containing %q", err, tc.want)
			}
		})
	}
	// Nothing listens.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	if _, _, err := runBuildCommand(t, noEnv, "gh/org/repo/HEAD", "--server", url); err == nil || !strings.Contains(err.Error(), "connect to "+url+"/") {
		t.Errorf("err = %v, want a connection error naming %s", err, url)
	}
}

func TestBuildCommandEscapesSpec(t *testing.T) {
	srv := eventsServer(t, cliReady)
	if _, _, err := runBuildCommand(t, noEnv, "git/https%3A%2F%2Fexample.com%2Frepo/feature #1?x", "--server", srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if got, want := srv.requests()[0].URL.RequestURI(), "/build/git/https%3A%2F%2Fexample.com%2Frepo/feature%20%231%3Fx?build_only=true"; got != want {
		t.Errorf("request URI = %q, want %q", got, want)
	}
}

func TestBuildCommandUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no argument", nil, "want one <provider>/<spec> argument"},
		{"two arguments", []string{"gh/a/b/HEAD", "gh/c/d/HEAD"}, "got 2"},
		{"no spec", []string{"gh"}, `"gh" is not <provider>/<spec>`},
		{"empty spec", []string{"gh/"}, `"gh/" is not <provider>/<spec>`},
		{"unknown flag", []string{"--nope", "gh/a/b/HEAD"}, "flag provided but not defined: -nope"},
		{"bad server", []string{"gh/a/b/HEAD", "--server", "localhost:8585"}, `invalid --server "localhost:8585"`},
		{"server with query", []string{"gh/a/b/HEAD", "--server", "http://x/?a=b"}, `invalid --server`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runBuildCommand(t, noEnv, tc.args...)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("build %q: err = %v, want a usageError containing %q", tc.args, err, tc.want)
			}
		})
	}
	env := func(k string) string {
		if k == "BINDERBUILD_SERVER" {
			return "ftp://x"
		}
		return ""
	}
	var ue usageError
	if _, _, err := runBuildCommand(t, env, "gh/a/b/HEAD"); !errors.As(err, &ue) || !strings.Contains(err.Error(), "BINDERBUILD_SERVER") {
		t.Errorf("err = %v, want a usageError naming BINDERBUILD_SERVER", err)
	}
	stdout, _, err := runBuildCommand(t, noEnv, "--help")
	if err != nil || !strings.Contains(stdout, "Usage: binderbuild build <provider>/<spec>") || !strings.Contains(stdout, "-quiet") {
		t.Errorf("--help: err = %v, stdout:\n%s\nwant the usage and flags", err, stdout)
	}
}

// TestBuildTerminalOutput renders the spinner line and push progress as on
// a terminal (redrawn on events only, with a frozen clock).
func TestBuildTerminalOutput(t *testing.T) {
	srv := eventsServer(t, cliSuccess...)
	start, calls := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 0
	now := func() time.Time { // the start, then 83 s later
		calls++
		if calls == 1 {
			return start
		}
		return start.Add(83 * time.Second)
	}
	var out bytes.Buffer
	image, err := runBuild(t.Context(), buildOptions{server: srv.URL + "/", spec: "gh/org/repo/HEAD", tty: true, width: 120, now: now}, &out)
	if err != nil || image != cliImage {
		t.Fatalf("runBuild = %q, %v; want %q", image, err, cliImage)
	}
	got := out.String()
	for _, want := range []string{
		"\r\x1b[2K⠋ connecting  1:23",
		"\r\x1b[2K==> building\n",
		"\r\x1b[2K⠋ building  1:23",
		"\x1b[32mSuccessfully built 3f6b3b5b1c2d\x1b[0m\x1b[0m\n", // colours kept on a terminal
		"⠋ pushing  1:23  ████████████░░░░░░░░░░░░  50%  1/2 layers  1.0 MB / 2.0 MB",
		"⠋ pushing  1:23  ████████████████████████ 100%  1/2 layers  2.0 MB / 2.0 MB",
		"\r\x1b[2K" + cliImage + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if strings.Count(got, "Pushing image") != 1 {
		t.Errorf("repeated push messages printed %d times, want once", strings.Count(got, "Pushing image"))
	}
}

func TestBuildFailedError(t *testing.T) {
	tests := []struct {
		err  buildFailed
		want string
	}{
		{buildFailed{}, "build failed"},
		{buildFailed{Message: "Error during build: boom\n"}, "build failed: Error during build: boom"},
		{buildFailed{Message: "Build failed: repo2docker exited with code 1.\n"}, "build failed: repo2docker exited with code 1."},
		{buildFailed{StatusCode: 403}, "authentication required: the server refused the build (403 Forbidden): pass a token with --token or BINDERBUILD_TOKEN"},
		{buildFailed{StatusCode: 400, Message: "Missing Accept header: text/event-stream\n"}, "the server refused the build (400): Missing Accept header: text/event-stream"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestBuildCommandAgainstService runs `binderbuild serve` with the
// Kubernetes executor on the test cluster and a fake GitHub API, and builds
// with `binderbuild build`, playing the build pod: once to success, once to
// failure.
func TestBuildCommandAgainstService(t *testing.T) {
	cluster := testcluster.StartT(t)
	if err := cluster.AddNode(t.Context(), "build-node", nil, nil); err != nil {
		t.Fatal(err)
	}
	ns := cluster.NewNamespace(t.Context(), t)
	const sha = "2c1f3e4d5b6a79881726354453627180a9b8c7d6"
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"sha": %q}`, sha)
	}))
	t.Cleanup(gh.Close)
	reg := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	prefix := strings.TrimPrefix(reg.URL, "http://") + "/binder/"
	env := newEnv().merge(map[string]string{
		"BINDERBUILD_LISTEN":          "127.0.0.1:0",
		"BINDERBUILD_GITHUB_API_URL":  gh.URL,
		"BINDERBUILD_IMAGE_PREFIX":    prefix,
		"BINDERBUILD_BUILD_NAMESPACE": ns,
		"BINDERBUILD_EXECUTOR":        "kubernetes",
		"BINDERBUILD_GC_SCHEDULE":     "",
		"KUBECONFIG":                  cluster.KubeconfigPath(),
	})
	url := serveT(t, env)

	build := func(spec string) (*testlog.Buffer, chan error) {
		var out testlog.Buffer
		done := make(chan error, 1)
		go func() {
			done <- buildCommand(t.Context(), []string{spec, "--server", url}, env.getenv, &out, io.Discard)
		}()
		return &out, done
	}
	pod := func(repo string, out *testlog.Buffer, done chan error) string {
		name := binderbuild.BuildName("org-"+repo, sha)
		deadline := time.Now().Add(time.Minute)
		for {
			select {
			case err := <-done:
				t.Fatalf("binderbuild build returned before its pod ran: %v\noutput:\n%s", err, out)
			default:
			}
			p, err := cluster.Client().CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
			if err == nil && p.Status.Phase == corev1.PodRunning {
				return name
			}
			if time.Now().After(deadline) {
				t.Fatalf("build pod %s not running (err %v)", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait := func(done chan error) error {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			t.Fatal("binderbuild build did not return")
			return nil
		}
	}
	play := func(name string, outcome testcluster.Outcome, lines ...string) {
		if err := cluster.WritePodLog(t.Context(), ns, name, "builder", lines...); err != nil {
			t.Fatal(err)
		}
		if err := cluster.EndPodLog(t.Context(), ns, name, "builder"); err != nil {
			t.Fatal(err)
		}
		if err := cluster.FinishPod(t.Context(), ns, name, outcome); err != nil {
			t.Fatal(err)
		}
	}

	image := binderbuild.ImageName(prefix, "org-repo", sha)
	out, done := build("gh/org/repo/HEAD")
	play(pod("repo", out, done), testcluster.Succeeded(), cliPicked, cliFetching, cliBuilding, cliPush1, `{"message": "Successfully pushed `+image+`", "phase": "pushing"}`)
	if err := wait(done); err != nil {
		t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	want := "==> waiting\nWaiting for build to start...\nPicked Git content provider.\n==> fetching\nCloning into '/tmp/repo2docker1'...\n" +
		"==> building\nStep 1/3 : FROM docker.io/library/buildpack-deps:jammy\n==> pushing\nPushing image\nSuccessfully pushed " + image + "\n" +
		"==> ready\nDone! Image built\n" + image + "\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}

	out, done = build("gh/org/broken/HEAD")
	play(pod("broken", out, done), testcluster.Failed(2), cliFetching, cliBuilding)
	err := wait(done)
	var bf buildFailed
	if !errors.As(err, &bf) || !strings.HasPrefix(err.Error(), "build failed: repo2docker exited with code 2.") {
		t.Errorf("err = %v, want buildFailed: repo2docker exited with code 2\noutput:\n%s", err, out)
	}
}
