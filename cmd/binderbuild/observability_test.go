package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testlog"
)

// stoppableServer serves a handler on a fixed loopback address that can be
// stopped (connections refused) and started again.
type stoppableServer struct {
	t       *testing.T
	handler http.Handler
	addr    string

	mu  sync.Mutex
	srv *http.Server
}

func newStoppableServer(t *testing.T, h http.Handler) *stoppableServer {
	t.Helper()
	s := &stoppableServer{t: t, handler: h, addr: "127.0.0.1:0"}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *stoppableServer) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var ln net.Listener
	var err error
	for range 100 { // the port can linger for a moment after a stop
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
}

func (s *stoppableServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// apiServerProxy forwards plain HTTP to the test cluster's API server with the
// admin credentials, so that a kubeconfig pointing at it needs none.
func apiServerProxy(t *testing.T, c *testcluster.Cluster) http.Handler {
	t.Helper()
	rt, err := rest.TransportFor(c.RestConfig())
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(c.APIServerURL())
	return &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:     rt,
		FlushInterval: -1, // watches and log streams
		ErrorLog:      log.New(io.Discard, "", 0),
	}
}

func writeProxyKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// capturedService is `binderbuild serve` run in-process with its standard output
// (events) and error (logs) captured.
type capturedService struct {
	url            string
	stdout, stderr *testlog.Buffer
	stop           func() // ends the service and waits for it
}

func serveCaptured(t *testing.T, env testEnv) *capturedService {
	t.Helper()
	env = env.with(map[string]string{"BINDERBUILD_LISTEN": "127.0.0.1:0", "BINDERBUILD_GC_SCHEDULE": ""})
	ctx, cancel := context.WithCancel(context.Background())
	r := &capturedService{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env.lookup, r.stdout, pw) }()
	var once sync.Once
	scanned := make(chan struct{})
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			pw.Close()
			<-scanned
		})
	}
	t.Cleanup(r.stop)
	addr := make(chan string, 1)
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.stderr.Write(append(sc.Bytes(), '\n')) //nolint:errcheck // a buffer
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		r.url = "http://" + a
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not start listening; logs:\n%s", r.stderr.String())
	}
	return r
}

// healthAnswer is one /health answer.
type healthAnswer struct {
	status int
	OK     bool `json:"ok"`
	Checks []struct {
		Service   string   `json:"service"`
		OK        bool     `json:"ok"`
		LatencyMS *float64 `json:"latency_ms"`
		Error     string   `json:"error"`
	} `json:"checks"`
}

func fetchHealth(t *testing.T, base string) healthAnswer {
	t.Helper()
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthAnswer
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	h.status = resp.StatusCode
	return h
}

func (h healthAnswer) check(service string) (ok bool, errText string, found bool) {
	for _, c := range h.Checks {
		if c.Service == service {
			return c.OK, c.Error, c.LatencyMS != nil
		}
	}
	return false, "", false
}

// awaitHealth polls /health until it answers status, and returns that answer.
func awaitHealth(t *testing.T, base string, status int) healthAnswer {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h := fetchHealth(t, base)
		if h.status == status {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health stayed %d, want %d: %+v", h.status, status, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestObservability runs the service against a real API server (behind a
// proxy that can be stopped) and an in-process registry.
func TestObservability(t *testing.T) {
	cluster := testcluster.StartT(t)
	if err := cluster.AddNode(t.Context(), "node-1", nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Run("health", func(t *testing.T) { testHealth(t, cluster) })
	t.Run("secrets", func(t *testing.T) { testSecrets(t, cluster) })
}

// testHealth: /health goes to 503 when the registry or the API server stops
// and back to 200 when it returns.
func testHealth(t *testing.T, cluster *testcluster.Cluster) {
	registry := newStoppableServer(t, ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	api := newStoppableServer(t, apiServerProxy(t, cluster))
	env := newEnv()
	env.set("KUBECONFIG", writeProxyKubeconfig(t, "http://"+api.addr))
	env.set("BINDERBUILD_BUILD_NAMESPACE", cluster.NewNamespace(t.Context(), t))
	env.set("BINDERBUILD_IMAGE_PREFIX", registry.addr+"/binder/")
	env.set("BINDERBUILD_HEALTH_CACHE_TTL", "10ms")
	env.set("BINDERBUILD_EVENTS_SINK", "none")
	svc := serveCaptured(t, env)

	h := awaitHealth(t, svc.url, http.StatusOK)
	for _, service := range []string{"Docker registry", "Kubernetes API"} {
		if ok, _, latency := h.check(service); !ok || !latency {
			t.Errorf("check %q: ok %v, latency reported %v; want both", service, ok, latency)
		}
	}
	for _, dep := range []struct {
		name    string
		service string
		s       *stoppableServer
	}{{"registry", "Docker registry", registry}, {"API server", "Kubernetes API", api}} {
		dep.s.stop()
		h := awaitHealth(t, svc.url, http.StatusServiceUnavailable)
		if ok, errText, _ := h.check(dep.service); ok || errText == "" || h.OK {
			t.Errorf("%s stopped: check %q ok %v error %q, overall ok %v; want a failed check with its error", dep.name, dep.service, ok, errText, h.OK)
		}
		resp, err := http.Head(svc.url + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("HEAD /health = %d with the %s stopped, want 503", resp.StatusCode, dep.name)
		}
		dep.s.start()
		awaitHealth(t, svc.url, http.StatusOK)
	}
}

// testSecrets: a request with an Authorization header, a configured GitHub
// token (also configured as the git credentials that reach the build pod)
// and a git URL with credentials leave
// no secret in logs, events or /metrics; /metrics shows the upstream and
// the new series.
func testSecrets(t *testing.T, cluster *testcluster.Cluster) {
	const (
		ghToken      = "ghp_configuredSecret0123456789"
		bearer       = "secret-token-abcdef"
		urlPassword  = "passw0rd-in-url"
		querySecret  = "query-secret-value"
		resolvedSHA  = "596b52f10efb0c9befc0c4ae850cc5175297d71c"
		registryPath = "/binder/"
	)
	gh := newStoppableServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "token "+ghToken {
			http.Error(w, `{"message": "Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Ratelimit-Remaining", "4999")
		w.Header().Set("X-Ratelimit-Limit", "5000")
		fmt.Fprintf(w, `{"sha": %q}`, resolvedSHA)
	}))
	registry := newStoppableServer(t, ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	ns := cluster.NewNamespace(t.Context(), t)
	env := newEnv()
	env.set("KUBECONFIG", cluster.KubeconfigPath())
	env.set("BINDERBUILD_BUILD_NAMESPACE", ns)
	env.set("BINDERBUILD_IMAGE_PREFIX", registry.addr+registryPath)
	env.set("BINDERBUILD_GITHUB_API_URL", "http://"+gh.addr)
	env.set("BINDERBUILD_GITHUB_TOKEN", ghToken)
	env.set("BINDERBUILD_GITHUB_GIT_CREDENTIALS", `username=`+ghToken+`\npassword=x-oauth-basic`)
	env.set("BINDERBUILD_EVENTS_SINK", "stdout")
	env.set("BINDERBUILD_LOG_LEVEL", "debug")
	svc := serveCaptured(t, env)

	// A build: resolved with the token, which the build pod receives.
	done := make(chan string, 1)
	go func() {
		done <- streamWithAuth(t, svc.url+"/build/gh/org/repo/HEAD?build_only=true&access_token="+querySecret, "Bearer "+bearer)
	}()
	pod := awaitBuildPod(t, cluster, ns)
	var credentials string
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "GIT_CREDENTIAL_ENV" {
			credentials = e.Value
		}
	}
	if !strings.Contains(credentials, ghToken) {
		t.Fatalf("build pod's GIT_CREDENTIAL_ENV = %q, want the GitHub token: the test would prove nothing", credentials)
	}
	if err := cluster.WritePodLog(t.Context(), ns, pod.Name, "builder",
		`{"phase": "fetching", "message": "Cloning https://x-access-token:`+ghToken+`@github.com/org/repo\n"}`); err != nil {
		t.Fatal(err)
	}
	if err := cluster.EndPodLog(t.Context(), ns, pod.Name, "builder"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.FinishPod(t.Context(), ns, pod.Name, testcluster.Succeeded()); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-done:
		if !strings.Contains(body, `"phase": "ready"`) {
			t.Errorf("build stream = %s, want it to end with ready", body)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("build stream did not end")
	}

	// A git URL with credentials, refused by the provider.
	streamWithAuth(t, svc.url+"/build/git/https%3A%2F%2Fuser%3A"+urlPassword+"%40example.com%2Frepo.git/main?build_only=true", "token "+bearer)

	resp, err := http.Get(svc.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	svc.stop() // flushes the events

	for _, name := range []string{
		"binderhub_build_time_seconds_bucket", "binderhub_build_count_total", "binderhub_launch_time_seconds_bucket",
		"binderhub_launch_count_total", "binderhub_inprogress_builds", "binderhub_inprogress_launches",
		"binderhub_github_rate_limit_remaining", "binderbuild_build_queue_length", "binderbuild_build_queue_wait_seconds",
		"binderbuild_build_phase_seconds", "binderbuild_build_requests_total", "binderbuild_ref_resolution_seconds",
		"binderbuild_registry_check_seconds", "binderbuild_upstream_requests_total", "binderbuild_registry_requests_total",
		"binderbuild_kubernetes_requests_total", "binderbuild_sse_clients", "binderbuild_builds_total",
		"binderbuild_events_emitted_total", "go_goroutines", "process_cpu_seconds_total",
	} {
		if !bytes.Contains(metrics, []byte("\n"+name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !bytes.Contains(metrics, []byte(`binderhub_build_count_total{provider="GitHub",repo="https://github.com/org/repo",status="success"} 1`)) {
		t.Errorf("/metrics does not count the build:\n%s", linesWith(string(metrics), "binderhub_build_count_total"))
	}

	eventLines := strings.Split(strings.TrimSpace(svc.stdout.String()), "\n")
	schemas, err := events.LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	var launches int
	for _, l := range eventLines {
		if err := schemas.ValidateLine([]byte(l)); err != nil {
			t.Errorf("event does not match its schema: %v", err)
		}
		if strings.Contains(l, events.LaunchSchema) {
			launches++
		}
	}
	// Build-only requests launch nothing: no launch event.
	if launches != 0 {
		t.Errorf("%d launch events, want none:\n%s", launches, svc.stdout.String())
	}
	logs := svc.stderr.String()
	for _, want := range []string{`"msg":"request"`, `access_token=redacted`, `https%3A%2F%2Fredacted%40example.com`, `"msg":"build queued"`, `"msg":"build ended"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{ghToken, bearer, urlPassword, querySecret} {
		for name, text := range map[string]string{"logs": logs, "events": svc.stdout.String(), "/metrics": string(metrics)} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contain the secret %q:\n%s", name, secret, linesWith(text, secret))
			}
		}
	}
}

// streamWithAuth makes one /build request and returns the whole stream.
func streamWithAuth(t *testing.T, u, authorization string) string {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Error(err)
		return ""
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func awaitBuildPod(t *testing.T, cluster *testcluster.Cluster, ns string) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := cluster.Client().CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err == nil && len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning {
			return &pods.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no capturedService build pod in %s", ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func linesWith(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
