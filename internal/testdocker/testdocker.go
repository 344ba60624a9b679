//go:build linux

// Package testdocker runs a real Docker engine for tests: Debian's dockerd
// (package docker.io) on a socket of its own, with a Debian base image made
// by debootstrap and a fake repo2docker builder image built from it, since
// no image can be pulled on the test machines.
//
// The packages are test dependencies: `make docker-deps` installs them
// (tools/docker-deps.sh: docker.io, debootstrap, git). Start fails the test,
// never skips it, when they are missing.
//
// Everything slow is cached under <repo root>/.cache, keyed by Version: the
// debootstrap root file system as a tarball (~30-120 s to make, depending on
// the mirror) and each engine's data root, which keeps the imported base
// image, the builder image and the build cache between runs. Test processes
// running at the same time (go test runs packages in parallel) each take a
// data-root slot of their own, locked with flock.
//
// Linux only (process groups, flock and mounts), as the tests that use it.
package testdocker

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Version keys the caches: change it when the base image's packages or the
// engine flags change.
const Version = "1"

// ModulePath is the module whose root holds .cache.
const ModulePath = "github.com/binderbuild/binderbuild"

// BaseImage is the name of the debootstrap base image.
const BaseImage = "localhost/debian:bookworm"

// Suite is the Debian release of the base image.
const Suite = "bookworm"

// basePackages are installed into the base image by debootstrap --include:
// what the fake repo2docker needs besides the docker CLI.
var basePackages = []string{"git", "curl", "ca-certificates"}

// versionLabel marks images with the Version they were made for.
const versionLabel = "binderbuild.test.version"

//go:embed fake-repo2docker.sh
var fakeRepo2docker []byte

// installHint is what a test failing for a missing package says.
const installHint = "run `make docker-deps` (apt-get install docker.io debootstrap git)"

// Engine is a running dockerd. Start registers its Stop as a test cleanup.
type Engine struct {
	// Host is the engine address for DOCKER_HOST: unix://<Socket>.
	Host string
	// Socket is the engine's socket.
	Socket string
	// Client talks to the engine.
	Client *client.Client

	cmd     *exec.Cmd
	exited  chan struct{}
	out     *bytes.Buffer
	outMu   *sync.Mutex
	dir     string // exec root, socket and logs
	release func() // the data-root slot lock
	stop    sync.Once
}

// Start starts a dockerd for t, waits until it answers /_ping, removes the
// containers an earlier run left in its data root, and registers a cleanup
// that stops it. It fails t, never skips it, when dockerd is missing or does
// not come up; the message carries dockerd's output.
func Start(t testing.TB) *Engine {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		t.Fatalf("testdocker: dockerd not found: %s", installHint)
	}
	root, err := cacheRoot()
	if err != nil {
		t.Fatalf("testdocker: %v", err)
	}
	var errs []error
	for _, driver := range []string{"overlay2", "vfs"} {
		e, err := start(root, driver)
		if err == nil {
			t.Cleanup(e.Stop)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := e.removeContainers(ctx); err != nil {
				t.Fatalf("testdocker: %v", err)
			}
			if err := e.removeTestImages(ctx); err != nil {
				t.Fatalf("testdocker: %v", err)
			}
			return e
		}
		errs = append(errs, fmt.Errorf("storage driver %s: %w", driver, err))
	}
	t.Fatalf("testdocker: %v", errors.Join(errs...))
	return nil
}

func start(root, driver string) (*Engine, error) {
	dataRoot, release, err := lockSlot(filepath.Join(root, "docker"), driver)
	if err != nil {
		return nil, err
	}
	// A short folder: socket paths are limited to 108 bytes, and containerd
	// puts its sockets in the exec root.
	dir, err := os.MkdirTemp("", "tdock")
	if err != nil {
		release()
		return nil, err
	}
	sock := filepath.Join(dir, "docker.sock")
	cmd := exec.Command("dockerd",
		"--host", "unix://"+sock,
		"--data-root", dataRoot,
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		"--storage-driver="+driver)
	out := &bytes.Buffer{}
	outMu := &sync.Mutex{}
	w := &lockedWriter{mu: outMu, w: out}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		release()
		os.RemoveAll(dir)
		return nil, err
	}
	e := &Engine{Host: "unix://" + sock, Socket: sock, cmd: cmd, exited: make(chan struct{}), out: out, outMu: outMu, dir: dir, release: release}
	go func() { _ = cmd.Wait(); close(e.exited) }()
	if err := e.waitReady(60 * time.Second); err != nil {
		log := e.output()
		e.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(log, 30))
	}
	e.Client, err = client.New(client.WithHost(e.Host))
	if err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// lockSlot takes the first free data-root slot for driver and returns its
// folder and the function releasing it.
func lockSlot(dir, driver string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	for i := range 16 {
		name := fmt.Sprintf("%s-%s-%d", driver, Version, i)
		f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return "", nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return filepath.Join(dir, name), func() { f.Close() }, nil
	}
	return "", nil, fmt.Errorf("all 16 data-root slots under %s are in use", dir)
}

func (e *Engine) waitReady(timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", e.Socket)
		},
	}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-e.exited:
			return fmt.Errorf("dockerd exited: %v", e.cmd.ProcessState)
		default:
		}
		resp, err := hc.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("dockerd did not answer /_ping within %s", timeout)
}

// Stop removes every container, stops dockerd (SIGTERM, then SIGKILL after
// 20 s) and releases its data root. It is safe to call more than once.
func (e *Engine) Stop() {
	e.stop.Do(func() {
		if e.Client != nil {
			// Killed now rather than by dockerd's 10 s stop timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = e.removeContainers(ctx)
			cancel()
			e.Client.Close()
		}
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			<-e.exited
		}
		unmountUnder(e.dir) // dockerd leaves exec-root/netns/default mounted
		os.RemoveAll(e.dir)
		e.release()
	})
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// Output returns what dockerd printed so far.
func (e *Engine) output() string {
	e.outMu.Lock()
	defer e.outMu.Unlock()
	return e.out.String()
}

// removeContainers removes every container, e.g. left by a test killed
// before its cleanup.
func (e *Engine) removeContainers(ctx context.Context) error {
	list, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range list.Items {
		if _, err := e.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			return fmt.Errorf("remove container %s: %w", c.ID, err)
		}
	}
	return nil
}

// removeTestImages removes the images earlier runs built, keeping the base
// and builder images, so that the cached data root does not grow.
func (e *Engine) removeTestImages(ctx context.Context) error {
	list, err := e.Client.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	for _, im := range list.Items {
		keep := false
		for _, tag := range im.RepoTags {
			keep = keep || tag == BaseImage || strings.HasPrefix(tag, Repo2dockerName+":")
		}
		if keep {
			continue
		}
		if _, err := e.Client.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove image %s: %w", im.ID, err)
		}
	}
	return nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cacheRoot is <repo root>/.cache/testdocker's parent, <repo root>/.cache.
func cacheRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	moduleLine := regexp.MustCompile(`(?m)^module\s+"?([^"\s]+)"?\s*$`)
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if m := moduleLine.FindSubmatch(data); m != nil && string(m[1]) == ModulePath {
				// runc refuses a container root file system whose path has
				// a symbolic link in it, and worktrees link .cache.
				return resolved(filepath.Join(dir, ".cache"))
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s above the working directory", ModulePath)
		}
		dir = parent
	}
}

// resolved is path with symbolic links resolved, made first if missing.
func resolved(path string) (string, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(path)
}

// jsonStream reads an engine progress stream (build, import) and returns
// its "stream" text, or the first error it reports.
func jsonStream(r io.Reader) (string, error) {
	var text strings.Builder
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream string `json:"stream"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return text.String(), nil
		} else if err != nil {
			return text.String(), err
		}
		if m.Error != "" {
			return text.String(), errors.New(m.Error)
		}
		text.WriteString(m.Stream)
	}
}
