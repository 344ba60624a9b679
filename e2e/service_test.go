package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/race"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testlog"
)

// repoRoot is the folder of binderbuild's go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(data, []byte("module "+testcluster.ModulePath+"\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no binderbuild go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/binderbuild once per test run, with the race detector
// when the tests have it (its packages are then already compiled).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(tmpRoot, "binderbuild")
		args := []string{"build", "-o", binPath}
		if race.Enabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/binderbuild")...)
		cmd.Dir = repoRoot(t)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/binderbuild: %v\n%s", err, out)
			return
		}
		t.Logf("built binderbuild in %v", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// service is a running binderbuild binary.
type service struct {
	// URL is http://127.0.0.1:<port>, without the base URL.
	URL  string
	Base string
	cmd  *exec.Cmd
	log  *testlog.Buffer
	done chan struct{}
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// buildEnv is the environment of a service that builds in namespace ns on
// the test cluster, pushes to (and looks in) reg, and resolves GitHub refs
// with gh.
func buildEnv(t *testing.T, ns, registryHost, githubAPI string) map[string]string {
	return map[string]string{
		"BINDERBUILD_EXECUTOR":            "kubernetes",
		"KUBECONFIG":                      cluster.Get(t).KubeconfigPath(),
		"BINDERBUILD_BUILD_NAMESPACE":     ns,
		"BINDERBUILD_BUILD_NODE_SELECTOR": dockerAPILabel + ":true",
		"BINDERBUILD_IMAGE_PREFIX":        registryHost + "/binder/",
		"BINDERBUILD_GITHUB_API_URL":      githubAPI,
	}
}

// startService runs the binary with env (and nothing else from the test's
// environment; BINDERBUILD_LISTEN defaults to a free loopback port) and waits until {base}versions answers. It stops the
// service at the end of the test and logs its output if the test failed.
func startService(t *testing.T, env map[string]string) *service {
	t.Helper()
	bin := binary(t)
	port := freePort(t)
	if listen, ok := env["BINDERBUILD_LISTEN"]; ok {
		p, err := strconv.Atoi(strings.TrimPrefix(listen, "127.0.0.1:"))
		if err != nil {
			t.Fatalf("BINDERBUILD_LISTEN=%s: want 127.0.0.1:<port>", listen)
		}
		port = p
	}
	base := "/" + strings.Trim(env["BINDERBUILD_BASE_URL"], "/") + "/"
	if base == "//" {
		base = "/"
	}
	s := &service{URL: "http://127.0.0.1:" + strconv.Itoa(port), Base: base, log: &testlog.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"BINDERBUILD_LISTEN=127.0.0.1:" + strconv.Itoa(port), "BINDERBUILD_LOG_LEVEL=debug"}
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start binderbuild: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("binderbuild output:\n%s", tail(s.log.String(), 6000))
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-s.done:
			t.Fatalf("binderbuild exited at start-up: %v\n%s", s.cmd.ProcessState, s.log.String())
		default:
		}
		resp, err := http.Get(s.URL + strings.TrimSuffix(base, "/") + "/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("binderbuild did not answer %sversions within a minute:\n%s", base, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the service (SIGTERM, then SIGKILL after 10 s).
func (s *service) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// endpoint is the build endpoint URL the client is given.
func (s *service) endpoint() string { return s.URL + s.Base + "build/" }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// assertNoSecrets fails t when one of the secrets appears in the log.
func assertNoSecrets(t *testing.T, log string, secrets ...string) {
	t.Helper()
	if !strings.Contains(log, `"msg"`) {
		t.Fatalf("the service logged nothing; the redaction check would prove nothing:\n%s", log)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("service log contains the secret %q", s)
		}
	}
}

// fakeGitHub is GitHub's commits API (GET /repos/<user>/<repo>/commits/<ref>)
// over a fixed table of "<user>/<repo>/<ref>" → sha.
type fakeGitHub struct {
	*httptest.Server
	mu   sync.Mutex
	refs map[string]string
}

func newFakeGitHub(t *testing.T, refs map[string]string) *fakeGitHub {
	g := &fakeGitHub{refs: refs}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/repos/")
		parts := strings.SplitN(rest, "/", 4)
		if !ok || len(parts) != 4 || parts[2] != "commits" {
			http.NotFound(w, r)
			return
		}
		g.mu.Lock()
		sha, found := g.refs[parts[0]+"/"+parts[1]+"/"+parts[3]]
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !found {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message": "Not Found"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"sha": sha})
	}))
	t.Cleanup(g.Close)
	return g
}

// image is the name binderbuild gives the image of a gh repository.
func image(registryHost, user, repo, sha string) string {
	return binderbuild.ImageName(registryHost+"/binder/", user+"-"+repo, sha)
}

// pushImage puts a small random image under ref, so that requests for it
// are cache hits.
func pushImage(t *testing.T, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// waitPod waits until the build pod of user/repo at sha runs.
func waitPod(t *testing.T, ns, user, repo, sha string) string {
	t.Helper()
	pod := binderbuild.BuildName(user+"-"+repo, sha)
	poll(t, "build pod "+pod+" running", func() bool {
		p, err := cluster.Get(t).Client().CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	return pod
}

// finishPod writes the pod's log and ends it with outcome.
func finishPod(t *testing.T, ns, pod string, outcome testcluster.Outcome, lines ...string) {
	t.Helper()
	if len(lines) > 0 {
		if err := cluster.Get(t).WritePodLog(t.Context(), ns, pod, "builder", lines...); err != nil {
			t.Fatal(err)
		}
	}
	if err := cluster.Get(t).EndPodLog(t.Context(), ns, pod, "builder"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Get(t).FinishPod(t.Context(), ns, pod, outcome); err != nil {
		t.Fatal(err)
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientInstall installs package.json/package-lock.json of
// clients/binderhub-client with `npm ci` into
// .cache/binderhub-client/<hash of both files>, once: warm runs reuse it.
var (
	npmOnce   sync.Once
	npmDir    string
	npmErr    error
	npmSource string
)

func clientInstall(t *testing.T) (modules, source string) {
	t.Helper()
	npmOnce.Do(func() {
		root := repoRoot(t)
		npmSource = filepath.Join(root, "clients", "binderhub-client")
		npmDir, npmErr = npmCI(npmSource, filepath.Join(root, ".cache", "binderhub-client"))
		if npmErr == nil {
			t.Logf("binderhub-client installed in %s", npmDir)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	return filepath.Join(npmDir, "node_modules"), npmSource
}

func npmCI(src, cacheRoot string) (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not found: the binderhub-client tests need Node.js 20 and npm (run tools/e2e-deps.sh)", tool)
		}
	}
	h := sha256.New()
	var files [][]byte
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		files = append(files, b)
		h.Write(b)
	}
	dir := filepath.Join(cacheRoot, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@jupyterhub", "binderhub-client", "lib", "client.js")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheRoot, "install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for i, f := range []string{"package.json", "package-lock.json"} {
		if err := os.WriteFile(filepath.Join(tmp, f), files[i], 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci in %s (installs @jupyterhub/binderhub-client from the npm registry): %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil // another run installed it meanwhile
		}
		return "", err
	}
	return dir, nil
}

// clientWorkdir is a folder with the JS files of clients/binderhub-client
// and a node_modules link to the cached install.
func clientWorkdir(t *testing.T) string {
	t.Helper()
	modules, src := clientInstall(t)
	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".mjs") {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// clientOpts are stream.mjs's options.
type clientOpts struct {
	Endpoint     string `json:"endpoint"`
	Spec         string `json:"spec"`
	APIToken     string `json:"apiToken,omitempty"`
	BuildToken   string `json:"buildToken,omitempty"`
	BuildOnly    bool   `json:"buildOnly,omitempty"`
	CloseOnReady *bool  `json:"closeOnReady,omitempty"`
}

var keepReading = new(bool) // CloseOnReady: false

// clientRun is one stream.mjs process.
type clientRun struct {
	cmd    *exec.Cmd
	stdout *testlog.Buffer
	stderr *testlog.Buffer
	done   chan struct{}
	err    error
}

// runClient starts the real binderhub-client on opts; wait collects the
// items it yields.
func runClient(t *testing.T, opts clientOpts) *clientRun {
	t.Helper()
	dir := clientWorkdir(t)
	arg, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &clientRun{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, done: make(chan struct{})}
	c.cmd = exec.CommandContext(t.Context(), "node", "--experimental-detect-module", "--no-warnings", "stream.mjs", string(arg))
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// wait returns the URL the client requested and the items it yielded, each
// as canonical JSON (sorted keys).
func (c *clientRun) wait(t *testing.T) (string, []string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("binderhub-client did not finish; output so far:\n%s\n%s", c.stdout.String(), c.stderr.String())
	}
	if c.err != nil {
		t.Fatalf("binderhub-client: %v\nstdout:\n%s\nstderr:\n%s", c.err, c.stdout.String(), c.stderr.String())
	}
	var buildURL string
	var items []string
	sc := bufio.NewScanner(strings.NewReader(c.stdout.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if buildURL == "" && strings.HasPrefix(line, `{"buildUrl":`) {
			var v struct{ BuildURL string }
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatal(err)
			}
			buildURL = v.BuildURL
			continue
		}
		if line == `{"timeout":true}` {
			t.Fatalf("binderhub-client timed out; items:\n%s", strings.Join(items, "\n"))
		}
		items = append(items, canonical(t, line))
	}
	return buildURL, items
}

// canonical re-encodes a JSON object with sorted keys.
func canonical(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %q: %v", s, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func canonicalAll(t *testing.T, events []string) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = canonical(t, e)
	}
	return out
}

// assertTranscript compares the items event by event.
func assertTranscript(t *testing.T, got, want []string) {
	t.Helper()
	want = canonicalAll(t, want)
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("item %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

// Events the client yields, in the server's own encoding.
const (
	waitingEvent = `{"phase": "waiting", "message": "Waiting for build to start...\n"}`
	closedEvent  = `{"phase": "failed", "message": "Event stream closed unexpectedly\n"}`
	forbidden    = `{"phase": "failed", "status_code": 403, "message": "Forbidden\n"}`
)

func readyBuilt(image string) string {
	return `{"phase": "ready", "message": "Done! Image built\n", "imageName": "` + image + `"}`
}

func readyFound(image string) string {
	return `{"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}`
}

// r2dLines is repo2docker --json-logs output of a small build.
var r2dLines = []string{
	`{"message": "Picked Git content provider.\n"}`,
	`{"message": "Cloning into '/tmp/repo2dockerabc'...\n", "phase": "fetching"}`,
	`{"message": "Step 1/3 : FROM docker.io/library/buildpack-deps:bionic", "phase": "building"}`,
}
