// Package testregistry runs a real OCI distribution registry (Debian's
// docker-registry, distribution 2.8) on 127.0.0.1 (or another local address) for tests, optionally with
// htpasswd authentication and deletes enabled.
//
// The binary is a test dependency: `make test-deps` installs it with apt
// (packages docker-registry and apache2-utils). Start fails the test, never
// skips it, when the binary is missing.
package testregistry

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/binderbuild/binderbuild/internal/testlog"
)

// DefaultBinary is where Debian's docker-registry package installs the
// registry.
const DefaultBinary = "/usr/bin/docker-registry"

// Realm is the htpasswd realm of a registry started with Users.
const Realm = "basic-realm"

// startTimeout bounds how long Start waits for the registry to answer /v2/.
const startTimeout = 15 * time.Second

// Options configure Start. The zero value starts an anonymous registry
// without deletes.
type Options struct {
	// Users maps user names to passwords. When non-empty the registry
	// requires HTTP basic authentication (htpasswd, bcrypt, realm Realm) for
	// every request, /v2/ included.
	Users map[string]string
	// DeleteEnabled lets clients delete manifests and blobs
	// (storage.delete.enabled); without it DELETE answers 405.
	DeleteEnabled bool
	// Binary is the registry executable. Default DefaultBinary.
	Binary string
	// IP is the address the registry listens on. Default 127.0.0.1; a test
	// cluster's pods reach it on their node's address (testcluster.Node.IP).
	IP string
}

// Registry is a running docker-registry process serving plain HTTP on
// Options.IP. Start registers its Stop as a test cleanup.
type Registry struct {
	host   string
	config string
	cmd    *exec.Cmd
	// exited is closed when the process has been waited for; err is its
	// exit error then.
	exited chan struct{}
	err    error
	out    *testlog.Buffer
	stop   sync.Once
}

// Start starts a registry with opts, waits until it answers /v2/ and
// registers a cleanup that kills it. Storage lives in a t.TempDir. It fails
// t (never skips) when the binary is missing or the registry does not come
// up; the message then carries the registry's output.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	bin := opts.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testregistry: registry binary %s: %v; run `make test-deps` (apt-get install docker-registry apache2-utils)", bin, err)
	}
	dir := t.TempDir()
	var htpasswd string
	if len(opts.Users) > 0 {
		htpasswd = filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(htpasswd, opts.Users); err != nil {
			t.Fatalf("testregistry: %v", err)
		}
	}
	// The port is picked by listening on :0 and closing; another process
	// may take it before the registry binds, so retry a few times.
	var errs []error
	for range 3 {
		r, err := start(bin, dir, cmp.Or(opts.IP, "127.0.0.1"), htpasswd, opts.DeleteEnabled)
		if err == nil {
			t.Cleanup(r.Stop)
			return r
		}
		errs = append(errs, err)
	}
	t.Fatalf("testregistry: %v", errors.Join(errs...))
	return nil
}

// Host returns the registry's "<IP>:port", to use as the registry part
// of image names. go-containerregistry talks plain HTTP to 127.0.0.1 by
// itself (other addresses need name.Insecure).
func (r *Registry) Host() string { return r.host }

// URL returns "http://" + Host().
func (r *Registry) URL() string { return "http://" + r.host }

// ConfigPath returns the registry's configuration file, e.g. for
// `docker-registry garbage-collect <config>` after deletes.
func (r *Registry) ConfigPath() string { return r.config }

// Stop kills the registry and waits for it to exit. It is safe to call more
// than once; Start registers it as a cleanup.
func (r *Registry) Stop() {
	r.stop.Do(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
	})
}

// start runs one registry process on a free port and waits until it is up.
func start(bin, dir, ip, htpasswd string, deleteEnabled bool) (*Registry, error) {
	port, err := freePort(ip)
	if err != nil {
		return nil, err
	}
	host := net.JoinHostPort(ip, strconv.Itoa(port))
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "config-"+strconv.Itoa(port)+".yml")
	if err := os.WriteFile(config, []byte(configYAML(host, storage, htpasswd, deleteEnabled)), 0o600); err != nil {
		return nil, err
	}
	r := &Registry{host: host, config: config, exited: make(chan struct{}), out: &testlog.Buffer{}}
	r.cmd = exec.Command(bin, "serve", config)
	r.cmd.Env = environ()
	r.cmd.Stdout = r.out
	r.cmd.Stderr = r.out
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	if err := r.waitReady(); err != nil {
		r.Stop()
		return nil, fmt.Errorf("registry on %s: %w; output:\n%s", host, err, r.out.String())
	}
	return r, nil
}

// waitReady polls /v2/ until it answers 200 or 401 (auth enabled), the
// process exits, or startTimeout passes.
func (r *Registry) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-r.exited:
			return fmt.Errorf("exited: %v", r.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", startTimeout, err)
		}
	}
}

// configYAML is a distribution 2.x configuration listening on host only.
func configYAML(host, storage, htpasswd string, deleteEnabled bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\n")
	fmt.Fprintf(&b, "log:\n  level: warn\n  accesslog:\n    disabled: true\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %q\n", storage)
	fmt.Fprintf(&b, "  delete:\n    enabled: %t\n", deleteEnabled)
	fmt.Fprintf(&b, "http:\n  addr: %q\n", host)
	if htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: %s\n    path: %q\n", Realm, htpasswd)
	}
	return b.String()
}

// writeHtpasswd writes users as an htpasswd file with bcrypt hashes (the
// only hash distribution accepts), like `htpasswd -Bbc`.
func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return fmt.Errorf("htpasswd user %q: empty or contains ':' or newline", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		hash, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("htpasswd user %q: %w", u, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, hash)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// Push pushes a small random image (one 64-byte layer) as image to a
// registry on loopback, which go-containerregistry reaches over plain HTTP.
func Push(t testing.TB, image string) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", image, err)
	}
}

// freePort returns a TCP port that was free on ip a moment ago.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// environ is the test's environment without REGISTRY_* variables, which
// would override the configuration file.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}
