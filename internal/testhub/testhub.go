//go:build linux

// Package testhub runs a real JupyterHub (Debian's jupyterhub 3.0 and its
// configurable-http-proxy) on 127.0.0.1 for launch tests. Its spawner is
// built on SimpleLocalProcessSpawner: it records the user_options of every
// start, turns the binder token of user_options into a hub token of the
// user (so that the launched server accepts it, as BinderSpawnerMixin's
// notebook does), and starts Debian's real jupyterhub-singleuser. Images
// named with "spawnfails" make the spawner fail, "spawnhangs" make it
// hang until the hub's start timeout (30 s) ends it. With UserPods it also
// keeps a Kubernetes pod per server, as KubeSpawner does, for launch quotas.
//
// The packages are test dependencies installed by tools/e2e-deps.sh (make
// e2e-deps); Start fails the test, never skips it, when they are missing.
//
// Linux only (process groups), as the tests that use it.
package testhub

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/testlog"
)

// Options configure Start.
type Options struct {
	// ServiceURL registers a service named binder at this URL, reached
	// through the proxy at /services/binder/; empty: an API-only service.
	ServiceURL string
	// NamedServers allows named servers, at most NamedServerLimit per
	// user (0: no limit).
	NamedServers     bool
	NamedServerLimit int
	// UserTokens maps API tokens to the hub users they authenticate
	// (users are created); they stand for tokens users make themselves.
	UserTokens map[string]string
	// UserPods makes the spawner keep a Kubernetes pod for every server
	// it runs, as KubeSpawner does; nil: no pods.
	UserPods *UserPods
}

// UserPods is where the spawner keeps its servers' pods: created when a
// server starts, deleted when it stops, with KubeSpawner's labels
// (app=jupyterhub, component=singleuser-server, heritage=jupyterhub,
// hub.jupyter.org/username and servername) and annotations (the user and
// server names) and one container "notebook" running user_options' image,
// the pods BinderHub's launch quota counts. Nothing runs them.
type UserPods struct {
	// APIURL is a Kubernetes API server reached over plain HTTP without
	// credentials, e.g. a proxy adding them.
	APIURL    string
	Namespace string
}

// Hub is a running JupyterHub. Start registers its Stop as a cleanup.
type Hub struct {
	// URL is the proxy's public URL, ending with "/".
	URL string
	// APIURL is the hub's API, ending with "/".
	APIURL string
	// Token is the binder service's API token (scopes servers and
	// admin:users, as binderhub's chart grants).
	Token string

	dir  string
	cmd  *exec.Cmd
	log  *testlog.Buffer
	done chan struct{}
	once sync.Once
}

const config = `
import asyncio, json, os, re, urllib.error, urllib.request
from urllib.parse import quote
from jupyterhub.spawner import SimpleLocalProcessSpawner

RECORDS = %[1]q
KUBE = json.loads(%[16]q)

def kube(method, path, body=None):
    """A request to the Kubernetes API of UserPods; 404 is no error."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(KUBE["url"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise RuntimeError(f"{method} {path}: {e.code} {e.read()!r}")

def label(s):
    return re.sub("[^a-z0-9-]", "-", s.lower())[:63].strip("-")

class RecordingSpawner(SimpleLocalProcessSpawner):
    """Records user_options; the binder token becomes a token of the user."""

    async def start(self):
        opts = self.user_options or {}
        name = quote(self.user.name, safe="") + "~" + quote(self.name, safe="")
        with open(os.path.join(RECORDS, name + ".json"), "w") as f:
            json.dump(opts, f)
        image = opts.get("image", "")
        if "spawnfails" in image:
            raise RuntimeError("the test spawner refuses " + image)
        if "spawnhangs" in image:
            await asyncio.sleep(3600)
        if opts.get("token"):
            self.user.new_api_token(token=opts["token"], note="binder launch")
            self.db.commit()
        if KUBE:
            await asyncio.get_running_loop().run_in_executor(None, self.create_pod, image)
        return await super().start()

    async def stop(self, now=False):
        if KUBE:
            await asyncio.get_running_loop().run_in_executor(None, self.delete_pod)
        return await super().stop(now=now)

    def pod_name(self):
        name = "jupyter-" + label(self.user.name)
        if self.name:
            name += "--" + label(self.name)
        return name[:63].strip("-")

    def create_pod(self, image):
        """The pod KubeSpawner would make for this server."""
        names = {"hub.jupyter.org/username": self.user.name, "hub.jupyter.org/servername": self.name}
        labels = {"app": "jupyterhub", "component": "singleuser-server", "heritage": "jupyterhub"}
        labels.update({k: label(v) for k, v in names.items()})
        kube("POST", "/api/v1/namespaces/" + KUBE["namespace"] + "/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.pod_name(), "labels": labels, "annotations": names},
            "spec": {"containers": [{"name": "notebook", "image": image}]},
        })

    def delete_pod(self):
        kube("DELETE", "/api/v1/namespaces/" + KUBE["namespace"] + "/pods/" + self.pod_name() + "?gracePeriodSeconds=0")

c.JupyterHub.spawner_class = RecordingSpawner
c.SimpleLocalProcessSpawner.home_dir_template = %[2]q
c.Spawner.args = ["--allow-root"] if os.getuid() == 0 else []
c.Spawner.default_url = "/tree"
c.Spawner.start_timeout = %[14]d
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = %[3]d
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = %[4]d
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%[5]d"
c.ConfigurableHTTPProxy.pid_file = %[6]q
c.JupyterHub.db_url = "sqlite:///" + %[7]q
c.JupyterHub.cookie_secret_file = %[8]q
c.JupyterHub.pid_file = %[9]q
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.allow_named_servers = %[10]s
c.JupyterHub.named_server_limit_per_user = %[11]d
# Spawn failures reach the progress stream instead of the start request.
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
service = {"name": "binder", "api_token": %[12]q, "display": False}
if %[13]q:
    service["url"] = %[13]q
c.JupyterHub.services = [service]
c.JupyterHub.api_tokens = json.loads(%[15]q)
# Users made at start-up get the default user role; token-only ones do not.
c.Authenticator.allowed_users = set(c.JupyterHub.api_tokens.values())
c.JupyterHub.load_roles = [
    {"name": "binder", "services": ["binder"], "scopes": ["servers", "admin:users"]},
]
`

// startTimeout (seconds) ends a hanging spawn; the single-user server
// starts in about 5 s on a busy test machine.
const startTimeout = 30

// Start runs a hub and waits until its API answers.
func Start(t testing.TB, opts Options) *Hub {
	t.Helper()
	bin, err := exec.LookPath("jupyterhub")
	if err != nil {
		t.Fatal("jupyterhub not found: install Debian's jupyterhub package (make e2e-deps)")
	}
	for _, tool := range []string{"configurable-http-proxy", "jupyterhub-singleuser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install it with make e2e-deps", tool)
		}
	}
	dir := t.TempDir()
	for _, d := range []string{"records", "home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port, apiPort, proxyPort := freePort(t), freePort(t), freePort(t)
	h := &Hub{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port) + "/",
		APIURL: "http://127.0.0.1:" + strconv.Itoa(apiPort) + "/hub/api/",
		Token:  randomHex(t),
		dir:    dir, log: &testlog.Buffer{}, done: make(chan struct{}),
	}
	named := "False"
	if opts.NamedServers {
		named = "True"
	}
	cfg := fmt.Sprintf(config, filepath.Join(dir, "records"), filepath.Join(dir, "home", "{username}"),
		port, apiPort, proxyPort, filepath.Join(dir, "proxy.pid"), filepath.Join(dir, "jupyterhub.sqlite"),
		filepath.Join(dir, "cookie_secret"), filepath.Join(dir, "jupyterhub.pid"), named, opts.NamedServerLimit,
		h.Token, opts.ServiceURL, startTimeout, userTokens(opts.UserTokens), userPods(opts.UserPods))
	if err := os.WriteFile(filepath.Join(dir, "jupyterhub_config.py"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(bin, "-f", filepath.Join(dir, "jupyterhub_config.py"))
	h.cmd.Dir = dir
	// Debian's configurable-http-proxy finds its modules in /usr/share/nodejs,
	// which only Debian's own node searches by default.
	h.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "NODE_PATH=/usr/share/nodejs", "LANG=C.UTF-8"}
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	// Its own process group: the proxy and the single-user servers stop too.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start jupyterhub: %v", err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.Stop()
		if t.Failed() {
			t.Logf("jupyterhub output:\n%s", h.log.Tail(8000))
		}
	})
	h.waitUp(t)
	return h
}

func (h *Hub) waitUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-h.done:
			t.Fatalf("jupyterhub exited at start-up (%v):\n%s", h.cmd.ProcessState, h.log.Tail(8000))
		default:
		}
		if status, _ := h.try(http.MethodGet, "users", nil); status == http.StatusOK &&
			strings.Contains(h.log.String(), "JupyterHub is now running") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jupyterhub did not answer within 90s:\n%s", h.log.Tail(8000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the hub, its proxy and the servers it started.
func (h *Hub) Stop() {
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

// Log returns the hub's output so far.
func (h *Hub) Log() string { return h.log.String() }

// API makes a Hub API request with the service's token and returns the
// status and body.
func (h *Hub) API(t testing.TB, method, path string, body []byte) (int, []byte) {
	t.Helper()
	status, b := h.try(method, path, body)
	if status == 0 {
		t.Fatalf("%s %s%s: %s", method, h.APIURL, path, b)
	}
	return status, b
}

func (h *Hub) try(method, path string, body []byte) (int, []byte) {
	req, err := http.NewRequest(method, h.APIURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "token "+h.Token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// WaitUsers waits until the hub's users are want, for at most a minute,
// and fails t with the last list otherwise.
func (h *Hub) WaitUsers(t testing.TB, want []string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := h.Users(t)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub users = %q, want %q", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Users returns the names of the hub's users.
func (h *Hub) Users(t testing.TB) []string {
	t.Helper()
	status, b := h.API(t, http.MethodGet, "users", nil)
	if status != http.StatusOK {
		t.Fatalf("GET users: %d %s", status, b)
	}
	var users []struct{ Name string }
	if err := json.Unmarshal(b, &users); err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.Name
	}
	return names
}

// CreateUser adds a hub user.
func (h *Hub) CreateUser(t testing.TB, name string) {
	t.Helper()
	if status, b := h.API(t, http.MethodPost, "users/"+name, nil); status != http.StatusCreated {
		t.Fatalf("POST users/%s: %d %s", name, status, b)
	}
}

// UserOptions returns the user_options the spawner got for the server of
// user (server "" for the default one), failing t if it never started.
func (h *Hub) UserOptions(t testing.TB, user, server string) map[string]any {
	t.Helper()
	name := pathEscape(user) + "~" + pathEscape(server) + ".json"
	b, err := os.ReadFile(filepath.Join(h.dir, "records", name))
	if err != nil {
		t.Fatalf("no server of %q named %q was started: %v", user, server, err)
	}
	var opts map[string]any
	if err := json.Unmarshal(b, &opts); err != nil {
		t.Fatal(err)
	}
	return opts
}

// ServerStatus returns the status of GET <serverURL>api/status with token,
// as a launch's client sends it: 200 when the launched single-user server
// accepts the token.
func ServerStatus(t testing.TB, serverURL, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, serverURL+"api/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pathEscape is Python's quote(s, safe="").
func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func userTokens(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}

// userPods is the spawner's KUBE: {} without pods.
func userPods(p *UserPods) string {
	if p == nil {
		return "{}"
	}
	b, _ := json.Marshal(map[string]string{"url": strings.TrimSuffix(p.APIURL, "/"), "namespace": p.Namespace}) // strings always encode
	return string(b)
}

func randomHex(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
