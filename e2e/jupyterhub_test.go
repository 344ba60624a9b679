package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testlog"
	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// hub is a running JupyterHub (Debian's jupyterhub 3.0.0) with its
// configurable-http-proxy, on loopback.
type hub struct {
	// URL is the proxy's public URL, http://127.0.0.1:<port>.
	URL string
	// APIURL is the hub's API, http://127.0.0.1:<hub port>/hub/api.
	APIURL string
	cmd    *exec.Cmd
	log    *testlog.Buffer
	done   chan struct{}
	once   sync.Once
}

// hubConfig is the jupyterhub_config.py of the test: the binderbuild
// service registered as in docs/jupyterhub.md, dummy authentication, and a
// role that lets alice (not bob) use the service.
const hubConfig = `
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = %[1]d
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = %[2]d
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%[3]d"
c.ConfigurableHTTPProxy.pid_file = "%[4]s/proxy.pid"
c.JupyterHub.db_url = "sqlite:///%[4]s/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "%[4]s/cookie_secret"
c.JupyterHub.pid_file = "%[4]s/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {"alice", "bob"}
c.JupyterHub.services = [
    {
        "name": "binder",
        "url": "http://127.0.0.1:%[5]d",
        "api_token": "%[6]s",
        "display": False,
        "oauth_no_confirm": True,
    },
]
c.JupyterHub.load_roles = [
    {
        "name": "binder-users",
        "scopes": ["access:services!service=binder"],
        "users": ["alice"],
    },
]
`

// startHub runs JupyterHub with the binderbuild service at
// 127.0.0.1:servicePort and waits until its proxy routes /services/binder/.
func startHub(t *testing.T, hubPort, apiPort, servicePort int, serviceToken string) *hub {
	t.Helper()
	bin, err := exec.LookPath("jupyterhub")
	if err != nil {
		t.Fatal("jupyterhub not found: install Debian's jupyterhub package (tools/e2e-deps.sh)")
	}
	if _, err := exec.LookPath("configurable-http-proxy"); err != nil {
		t.Fatal("configurable-http-proxy not found: install Debian's node-configurable-http-proxy (tools/e2e-deps.sh)")
	}
	dir := t.TempDir()
	proxyAPI := freePort(t)
	cfg := fmt.Sprintf(hubConfig, hubPort, apiPort, proxyAPI, dir, servicePort, serviceToken)
	if err := os.WriteFile(filepath.Join(dir, "jupyterhub_config.py"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &hub{URL: "http://127.0.0.1:" + strconv.Itoa(hubPort), APIURL: "http://127.0.0.1:" + strconv.Itoa(apiPort) + "/hub/api",
		log: &testlog.Buffer{}, done: make(chan struct{})}
	h.cmd = exec.Command(bin, "-f", filepath.Join(dir, "jupyterhub_config.py"))
	h.cmd.Dir = dir
	// Debian's configurable-http-proxy finds its modules in /usr/share/nodejs,
	// which only Debian's own node searches by default.
	h.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "NODE_PATH=/usr/share/nodejs", "LANG=C.UTF-8"}
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	// Its own process group, so that the proxy it starts can be stopped too.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start jupyterhub: %v", err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("jupyterhub output:\n%s", tail(h.log.String(), 6000))
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-h.done:
			t.Fatalf("jupyterhub exited at start-up (%v):\n%s", h.cmd.ProcessState, h.log.String())
		default:
		}
		// Up once the proxy forwards the service's route to binderbuild.
		resp, err := http.Get(h.URL + "/services/binder/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(h.log.String(), "JupyterHub is now running") {
				t.Logf("jupyterhub ready in %v", time.Since(t0).Round(time.Millisecond))
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jupyterhub did not route /services/binder/ within 90s:\n%s", h.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the hub (SIGTERM: it stops its proxy) and then anything left in
// its process group.
func (h *hub) stop() {
	h.once.Do(func() {
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(15 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	})
}

// userToken logs name in with the dummy authenticator and creates an API
// token the way jupyterhub-fancy-profiles does: GET /hub/api/user, then
// POST /hub/api/users/<name>/tokens with the browser's session cookie.
func (h *hub) userToken(t *testing.T, name string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(h.URL+"/hub/login", url.Values{"username": {name}, "password": {"any"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login %s: %s", name, resp.Status)
	}
	do := func(method, path string, body []byte) []byte {
		req, _ := http.NewRequestWithContext(t.Context(), method, h.URL+path, bytes.NewReader(body))
		req.Header.Set("Referer", h.URL+"/hub/home") // a browser's same-origin request
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
		return b
	}
	var user struct{ Name string }
	if err := json.Unmarshal(do(http.MethodGet, "/hub/api/user", nil), &user); err != nil || user.Name != name {
		t.Fatalf("GET /hub/api/user = %q, %v; want %s", user.Name, err, name)
	}
	var tok struct{ Token string }
	body := []byte(`{"expires_in": 3600, "note": "Created by Fancy Profiles for Build your Own Image"}`)
	if err := json.Unmarshal(do(http.MethodPost, "/hub/api/users/"+name+"/tokens", body), &tok); err != nil || tok.Token == "" {
		t.Fatalf("create token for %s: %v", name, err)
	}
	return tok.Token
}

// TestJupyterHub runs binderbuild as a JupyterHub service, as 2i2c deploys
// binderhub-service: the hub's proxy forwards /services/binder/ to it, it
// checks users' hub tokens with the hub API, and the real binderhub-client
// builds through the hub's URL exactly as jupyterhub-fancy-profiles does.
func TestJupyterHub(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	reg := testregistry.Start(t, testregistry.Options{})
	const (
		shaHead  = "5555555555555555555555555555555555555555"
		shaSlash = "6666666666666666666666666666666666666666"
		badToken = "0123456789abcdef0123456789abcdef"
	)
	serviceToken := "svc-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-api-token"
	gh := newFakeGitHub(t, map[string]string{
		"binder-examples/requirements/HEAD": shaHead,
		"org/repo/feature/x":                shaSlash,
	})
	hubPort, apiPort, svcPort := freePort(t), freePort(t), freePort(t)
	hubAPI := "http://127.0.0.1:" + strconv.Itoa(apiPort) + "/hub/api"

	env := buildEnv(t, ns, reg.Host(), gh.URL)
	env["BINDERBUILD_LISTEN"] = "127.0.0.1:" + strconv.Itoa(svcPort)
	env["BINDERBUILD_BASE_URL"] = "/services/binder"
	env["BINDERBUILD_AUTH"] = "jupyterhub"
	env["BINDERBUILD_METRICS_TOKEN"] = metricsToken
	env["BINDERBUILD_TRUSTED_PROXIES"] = "127.0.0.1/32"
	// What the hub gives its services; JUPYTERHUB_SERVICE_NAME makes
	// access:services!service=binder the required scope, as HubAuth does.
	env["JUPYTERHUB_API_URL"] = hubAPI
	env["JUPYTERHUB_API_TOKEN"] = serviceToken
	env["JUPYTERHUB_SERVICE_NAME"] = "binder"
	svc := startService(t, env)
	h := startHub(t, hubPort, apiPort, svcPort, serviceToken)
	endpoint := h.URL + "/services/binder/build/" // fancy-profiles: new URL("/services/binder/build/", origin)

	alice := h.userToken(t, "alice")
	bob := h.userToken(t, "bob")

	t.Run("build through the hub", func(t *testing.T) {
		c := runClient(t, clientOpts{Endpoint: endpoint, Spec: "gh/binder-examples/requirements/HEAD", APIToken: alice, BuildOnly: true})
		pod := waitPod(t, ns, "binder-examples", "requirements", shaHead)
		finishPod(t, ns, pod, testcluster.Succeeded(), r2dLines...)
		url, got := c.wait(t)
		if want := h.URL + "/services/binder/build/gh/binder-examples/requirements/HEAD?build_only=true"; url != want {
			t.Errorf("client requested %s, want %s", url, want)
		}
		assertTranscript(t, got, append(append([]string{waitingEvent}, r2dLines...),
			readyBuilt(image(reg.Host(), "binder-examples", "requirements", shaHead))))
	})

	t.Run("cache hit with a ref containing a slash, stream ends after ready", func(t *testing.T) {
		img := image(reg.Host(), "org", "repo", shaSlash)
		pushImage(t, img)
		_, got := runClient(t, clientOpts{Endpoint: endpoint, Spec: "gh/org/repo/feature/x", APIToken: alice,
			BuildOnly: true, CloseOnReady: keepReading}).wait(t)
		assertTranscript(t, got, []string{readyFound(img), closedEvent})
	})

	t.Run("user without the service scope", func(t *testing.T) {
		_, got := runClient(t, clientOpts{Endpoint: endpoint, Spec: "gh/org/repo/feature/x", APIToken: bob, BuildOnly: true}).wait(t)
		assertTranscript(t, got, []string{`{"phase": "failed", "status_code": 403, "message": "user bob is not allowed.\n"}`})
	})

	t.Run("bad token", func(t *testing.T) {
		_, got := runClient(t, clientOpts{Endpoint: endpoint, Spec: "gh/org/repo/feature/x", APIToken: badToken, BuildOnly: true}).wait(t)
		assertTranscript(t, got, []string{forbidden})
	})

	t.Run("no token", func(t *testing.T) {
		_, got := runClient(t, clientOpts{Endpoint: endpoint, Spec: "gh/org/repo/feature/x", BuildOnly: true}).wait(t)
		assertTranscript(t, got, []string{forbidden})
	})

	t.Run("health through the hub", func(t *testing.T) {
		checks := health(t, h.URL+"/services/binder/health", http.StatusOK)
		if checks["JupyterHub API"] != true {
			t.Errorf("checks = %v, want JupyterHub API ok", checks)
		}
		// Without the metrics token, with authentication on: ok only.
		resp, err := http.Get(h.URL + "/services/binder/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"ok":true}` {
			t.Errorf("/health without the metrics token = %d %s, want 200 {\"ok\":true}", resp.StatusCode, b)
		}
	})

	t.Run("hub down", func(t *testing.T) {
		h.stop()
		// A token the service has not seen, so the hub must be asked.
		_, got := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/repo/feature/x", APIToken: "unseen-" + badToken, BuildOnly: true}).wait(t)
		host, _ := os.Hostname()
		assertTranscript(t, got, []string{fmt.Sprintf(`{"phase": "failed", "status_code": 500, "message": "Failed to connect to Hub API at '%s'.  Is the Hub accessible at this URL (from host: %s)?\n"}`, hubAPI, host)})
		// /health reports it once its 5 s cache expires.
		poll(t, "/health to report the hub down", func() bool {
			return health(t, svc.URL+"/services/binder/health", 0)["JupyterHub API"] == false
		})
	})

	t.Run("logs hold no token", func(t *testing.T) {
		assertNoSecrets(t, svc.log.String(), alice, bob, badToken, serviceToken)
	})
}

// health returns /health's checks by service name (value: ok). want 0
// accepts any status.
// metricsToken lets the tests see /health's details.
const metricsToken = "metrics-token-e2e"

// health returns /health's checks, seen with the metrics token.
func health(t *testing.T, url string, want int) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep struct {
		Checks []struct {
			Service string
			OK      bool
		}
	}
	b, _ := io.ReadAll(resp.Body)
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("GET %s = %s %s, want %d", url, resp.Status, b, want)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
	out := map[string]any{}
	for _, c := range rep.Checks {
		out[c.Service] = c.OK
	}
	return out
}
