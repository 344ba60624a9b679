package builder_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/container"
	dockerclient "github.com/moby/moby/client"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/testdocker"
	"github.com/binderbuild/binderbuild/internal/testgit"
	"github.com/binderbuild/binderbuild/registry/embedded"
)

// localFixture is a real engine with the fake repo2docker image, a git
// server and an embedded registry, all on this machine.
type localFixture struct {
	engine   *testdocker.Engine
	image    string // the fake repo2docker
	git      *testgit.Server
	registry string // host:port of the embedded registry
	holds    *localHolds
}

func newLocalFixture(t *testing.T) *localFixture {
	t.Helper()
	e := testdocker.Start(t)
	f := &localFixture{engine: e, image: e.Repo2dockerImage(t), git: testgit.Start(t), holds: newLocalHolds(t)}
	reg, err := embedded.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	f.registry = strings.TrimPrefix(srv.URL, "http://")
	return f
}

// config is the executor's configuration for the fixture: host network, so
// that builds reach the git server on 127.0.0.1.
func (f *localFixture) config() builder.LocalConfig {
	return builder.LocalConfig{
		EngineHost:   f.engine.Host,
		BuildNetwork: "host",
		Build: builder.KubeConfig{
			PodConfig:            builder.PodConfig{BuildImage: f.image, BuildTimeout: 5 * time.Minute, Push: true},
			ConcurrentBuildLimit: 32,
		},
	}
}

// start returns a started executor; stop ends its loops (not its builds).
func (f *localFixture) start(t *testing.T, cfg builder.LocalConfig) (l *builder.Local, stop context.CancelFunc) {
	t.Helper()
	l, err := builder.NewLocal(f.engine.Client, cfg, slog.New(slog.NewTextHandler(localLogWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l.Start(ctx)
	return l, cancel
}

// scratchRepo is a repository whose image is one small layer: quick to build
// and push.
func localScratchRepo(extra map[string]string) map[string]string {
	files := map[string]string{"Dockerfile": "FROM scratch\nCOPY hello /hello\n", "hello": "hello\n"}
	for k, v := range extra {
		files[k] = v
	}
	return files
}

// request makes the repository name and the request to build it.
func (f *localFixture) request(t *testing.T, name string, files map[string]string) binderbuild.BuildRequest {
	t.Helper()
	url, sha := f.git.Repo(t, name, files)
	return binderbuild.BuildRequest{
		Name:     "build-" + name + "-" + sha[:10],
		RepoURL:  url,
		Ref:      sha,
		Image:    f.registry + "/binderbuild/" + name + ":" + sha,
		Provider: "git",
	}
}

// run runs one build and returns its error and events.
func localRun(t *testing.T, l *builder.Local, req binderbuild.BuildRequest) ([]events.Event, error) {
	t.Helper()
	log := events.NewLog(0)
	err := l.Run(t.Context(), req, log)
	evs, _, _, _ := log.Read(0)
	return evs, err
}

func localText(evs []events.Event) string {
	var b strings.Builder
	for _, e := range evs {
		var m struct{ Phase, Message string }
		_ = json.Unmarshal(e.Data, &m)
		b.WriteString(e.Phase + ": " + m.Message)
		if !strings.HasSuffix(m.Message, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// buildContainers lists the build containers of req, finished ones too.
func (f *localFixture) buildContainers(t *testing.T, buildName string) []container.Summary {
	t.Helper()
	res, err := f.engine.Client.ContainerList(t.Context(), dockerclient.ContainerListOptions{
		All: true, Filters: make(dockerclient.Filters).Add("label", "name="+buildName),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Items
}

func (f *localFixture) checkPushed(t *testing.T, image string) {
	t.Helper()
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref, remote.WithContext(t.Context())); err != nil {
		t.Errorf("image %s not in the registry: %v", image, err)
	}
}

// TestLocalBuild builds a Debian-based Dockerfile with RUN through the fake
// repo2docker: repo2docker's lines in order, the image pushed, the container
// labelled like a build pod while it runs and removed afterwards.
func TestLocalBuild(t *testing.T) {
	f := newLocalFixture(t)
	f.engine.BaseImage(t)
	l, _ := f.start(t, f.config())
	nonce := localNonce()
	req := f.request(t, "debian", map[string]string{
		"Dockerfile":     "FROM " + testdocker.BaseImage + "\nRUN echo " + nonce + " > /built\n",
		".fake-r2d/hold": f.holds.url("debian"),
	})
	type result struct {
		err error
		evs []events.Event
	}
	done := make(chan result, 1)
	go func() { evs, err := localRun(t, l, req); done <- result{err, evs} }()

	f.holds.waitArrived(t, "debian")
	cs := f.buildContainers(t, req.Name)
	if len(cs) != 1 {
		t.Fatalf("%d build containers while building, want 1", len(cs))
	}
	if got := cs[0].Labels; got["component"] != "binderhub-build" || got["name"] != req.Name || got["binder-repo"] != req.RepoURL {
		t.Errorf("build container labels = %v", got)
	}
	f.holds.release("debian")
	r := <-done
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, localText(r.evs))
	}
	var phases []string
	for _, e := range r.evs {
		if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
			phases = append(phases, e.Phase)
		}
	}
	if got, want := strings.Join(phases, ","), ",fetching,building,pushing"; got != want {
		t.Errorf("phases = %s, want %s\n%s", got, want, localText(r.evs))
	}
	msgs := localText(r.evs)
	for _, want := range []string{
		": Picked Git content provider.\n",
		"fetching: Cloning into '/tmp/repo2docker",
		"fetching: HEAD is now at " + req.Ref[:7] + " Add debian\n",
		"building: Step 2/4 : RUN echo " + nonce + " > /built\n",
		"building: Successfully tagged " + req.Image + "\n",
		"pushing: Pushing image\n",
		"pushing: Successfully pushed " + req.Image + "\n",
	} {
		if !strings.Contains(msgs, want) {
			t.Errorf("events lack %q:\n%s", want, msgs)
		}
	}
	f.checkPushed(t, req.Image)
	if cs := f.buildContainers(t, req.Name); len(cs) != 0 {
		t.Errorf("%d build containers left after the build, want 0", len(cs))
	}
}

// TestLocalFailures checks each failure cause and its message.
func TestLocalFailures(t *testing.T) {
	f := newLocalFixture(t)
	base := f.engine.BaseImage(t)
	tests := []struct {
		name  string
		files map[string]string
		cfg   func(*builder.LocalConfig)
		cause events.Cause
		want  []string // in the failed event's message, in order
	}{{
		name:  "build-error",
		files: map[string]string{"Dockerfile": "FROM " + base + "\nRUN exit 3\n"},
		cause: events.CauseFailed,
		want:  []string{`{"message": "The command '/bin/sh -c exit 3' returned a non-zero code: 3\n", "phase": "failed"}`},
	}, {
		name:  "crash",
		files: localScratchRepo(map[string]string{".fake-r2d/exit": "3"}),
		cause: events.CauseFailed,
		want:  []string{"Build failed: repo2docker exited with code 3.\\nLast log lines:\\n", "Crashing on purpose with exit code 3\\n"},
	}, {
		name:  "timeout",
		files: localScratchRepo(map[string]string{".fake-r2d/hold": f.holds.url("never")}),
		cfg:   func(c *builder.LocalConfig) { c.Build.BuildTimeout = 3 * time.Second },
		cause: events.CauseDeadline,
		want:  []string{"Build failed: it took longer than the build timeout of 3s.\\nLast log lines:\\n", "Waiting for the test"},
	}, {
		name:  "oom",
		files: localScratchRepo(map[string]string{".fake-r2d/oom": "512"}),
		cfg:   func(c *builder.LocalConfig) { c.Build.BuildMemoryLimit = "64Mi" },
		cause: events.CauseOOM,
		want:  []string{"Build failed: the build ran out of memory (OOMKilled, exit code 137).\\n", "Allocating 512 MiB"},
	}, {
		name:  "no-build-image",
		files: localScratchRepo(nil),
		cfg:   func(c *builder.LocalConfig) { c.Build.BuildImage = "localhost:1/no/such-image:1" },
		cause: events.CauseFailed,
		want:  []string{"Build failed: the container engine could not pull the build image localhost:1/no/such-image:1: "},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			l, _ := f.start(t, cfg)
			req := f.request(t, tc.name, tc.files)
			evs, err := localRun(t, l, req)
			var fail *events.Failure
			if !errors.As(err, &fail) {
				t.Fatalf("Run = %v, want an *events.Failure\n%s", err, localText(evs))
			}
			if fail.Cause != tc.cause {
				t.Errorf("cause = %s, want %s (%s)", fail.Cause, tc.cause, fail.Event.Data)
			}
			rest := string(fail.Event.Data)
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("failed event %s\nlacks (after the previous) %q", fail.Event.Data, w)
					break
				}
				rest = rest[i+len(w):]
			}
			if cs := f.buildContainers(t, req.Name); len(cs) != 0 {
				t.Errorf("%d build containers left, want 0", len(cs))
			}
		})
	}
}

// TestLocalQueue runs two builds with a limit of one: the second waits with
// its queue position and starts when the first ends.
func TestLocalQueue(t *testing.T) {
	f := newLocalFixture(t)
	cfg := f.config()
	cfg.Build.ConcurrentBuildLimit = 1
	l, _ := f.start(t, cfg)
	first := f.request(t, "first", localScratchRepo(map[string]string{".fake-r2d/hold": f.holds.url("first")}))
	second := f.request(t, "second", localScratchRepo(nil))

	firstDone := make(chan error, 1)
	go func() { _, err := localRun(t, l, first); firstDone <- err }()
	f.holds.waitArrived(t, "first")

	log := events.NewLog(0)
	secondDone := make(chan error, 1)
	go func() { secondDone <- l.Run(t.Context(), second, log) }()
	localWait(t, "the queue message", func() bool { return strings.Contains(localText(localEvents(log)), "position 1 of 1") })
	if cs := f.buildContainers(t, second.Name); len(cs) != 0 {
		t.Errorf("second build has a container while the first holds the only slot")
	}
	f.holds.release("first")
	if err := <-firstDone; err != nil {
		t.Fatalf("first build: %v", err)
	}
	if err := <-secondDone; err != nil {
		t.Fatalf("second build: %v\n%s", err, localText(localEvents(log)))
	}
	want := "waiting: Waiting for a build slot: position 1 of 1 in the queue (at most 1 builds run at once).\n: Picked Git content provider.\n"
	if got := localText(localEvents(log)); !strings.HasPrefix(got, want) {
		t.Errorf("second build's events:\n%s\nwant them to start with\n%s", got, want)
	}
	f.checkPushed(t, first.Image)
	f.checkPushed(t, second.Image)
}

// TestLocalAttachAfterRestart stops the executor while a build runs; a new
// executor attaches to the same container instead of starting another.
func TestLocalAttachAfterRestart(t *testing.T) {
	f := newLocalFixture(t)
	req := f.request(t, "restart", localScratchRepo(map[string]string{".fake-r2d/hold": f.holds.url("restart")}))

	l1, _ := f.start(t, f.config())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l1.Run(ctx, req, events.NewLog(0)) }()
	f.holds.waitArrived(t, "restart")
	before := f.buildContainers(t, req.Name)
	cancel() // the service stops; the build goes on
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}

	l2, _ := f.start(t, f.config())
	log := events.NewLog(0)
	done = make(chan error, 1)
	go func() { done <- l2.Run(t.Context(), req, log) }()
	localWait(t, "the replayed log", func() bool { return strings.Contains(localText(localEvents(log)), "Waiting for the test") })
	after := f.buildContainers(t, req.Name)
	if len(before) != 1 || len(after) != 1 || before[0].ID != after[0].ID {
		t.Fatalf("containers before the restart %v, after %v: want the same one", localIDs(before), localIDs(after))
	}
	f.holds.release("restart")
	if err := <-done; err != nil {
		t.Fatalf("attached build: %v\n%s", err, localText(localEvents(log)))
	}
	if got := localText(localEvents(log)); !strings.Contains(got, "fetching: HEAD is now at") || !strings.Contains(got, "pushing: Successfully pushed") {
		t.Errorf("attached build's events lack the log from the start:\n%s", got)
	}
	f.checkPushed(t, req.Image)
	if cs := f.buildContainers(t, req.Name); len(cs) != 0 {
		t.Errorf("%d build containers left, want 0", len(cs))
	}
}

// TestLocalUnreadableLog attaches to a build container whose log cannot be
// read (log driver none): the exit code still ends the build.
func TestLocalUnreadableLog(t *testing.T) {
	f := newLocalFixture(t)
	req := f.request(t, "nolog", localScratchRepo(map[string]string{".fake-r2d/exit": "3"}))
	_, err := f.engine.Client.ContainerCreate(t.Context(), dockerclient.ContainerCreateOptions{
		Name: req.Name,
		Config: &container.Config{Image: f.image, Cmd: []string{"jupyter-repo2docker", "--ref=" + req.Ref, "--image=" + req.Image, req.RepoURL},
			Labels: map[string]string{"component": "binderhub-build", "name": req.Name, "binder-repo": req.RepoURL, "binderbuild.org/image": req.Image}},
		HostConfig: &container.HostConfig{NetworkMode: "host", LogConfig: container.LogConfig{Type: "none"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := f.start(t, f.config())
	evs, err := localRun(t, l, req)
	var fail *events.Failure
	if !errors.As(err, &fail) || string(fail.Event.Data) != string(events.Failed(0, "Build failed: repo2docker exited with code 3.\n").Data) {
		t.Fatalf("Run = %v, want the exit code's failure\n%s", err, localText(evs))
	}
	if cs := f.buildContainers(t, req.Name); len(cs) != 0 {
		t.Errorf("%d build containers left, want 0", len(cs))
	}
}

// TestLocalCleanup runs cleanup rounds at chosen times over a finished and a
// running build container and a container that is no build; the loop then
// removes a finished container by itself.
func TestLocalCleanup(t *testing.T) {
	f := newLocalFixture(t)
	base := f.engine.BaseImage(t)
	ctx := t.Context()
	mk := func(name string, labels map[string]string, cmd ...string) {
		t.Helper()
		_, err := f.engine.Client.ContainerCreate(ctx, dockerclient.ContainerCreateOptions{
			Name: name, Config: &container.Config{Image: base, Cmd: cmd, Labels: labels},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.engine.Client.ContainerStart(ctx, name, dockerclient.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	build := func(name string) map[string]string {
		return map[string]string{"component": "binderhub-build", "name": name, "binder-repo": "x"}
	}
	mk("build-finished", build("build-finished"), "true")
	mk("build-running", build("build-running"), "sleep", "600")
	mk("not-a-build", nil, "sleep", "600")
	localWait(t, "the finished container to exit", func() bool {
		res, err := f.engine.Client.ContainerInspect(ctx, "build-finished", dockerclient.ContainerInspectOptions{})
		return err == nil && res.Container.State.Status == container.StateExited
	})
	cfg := f.config()
	cfg.Build.CleanupInterval = time.Hour // the loop stays idle
	cfg.Build.BuildMaxAge = 2 * time.Hour
	l, _ := f.start(t, cfg)
	left := func() string {
		var names []string
		for _, n := range []string{"build-finished", "build-running", "not-a-build"} {
			res, err := f.engine.Client.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: make(dockerclient.Filters).Add("name", "^/"+n+"$")})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Items) > 0 {
				names = append(names, n)
			}
		}
		return strings.Join(names, ",")
	}
	now := time.Now()
	// The grace after finishing is the interval, an hour: a round 30 minutes
	// on keeps everything, 61 minutes on removes the finished container, 3
	// hours on the running one too (older than 2h). The container that is no
	// build stays.
	for _, round := range []struct {
		after time.Duration
		want  string
	}{
		{0, "build-finished,build-running,not-a-build"},
		{30 * time.Minute, "build-finished,build-running,not-a-build"},
		{61 * time.Minute, "build-running,not-a-build"},
		{3 * time.Hour, "not-a-build"},
	} {
		l.CleanupAt(ctx, now.Add(round.after))
		if got := left(); got != round.want {
			t.Errorf("after a round %s on: containers %s, want %s", round.after, got, round.want)
		}
	}

	mk("build-finished-2", build("build-finished-2"), "true")
	cfg.Build.CleanupInterval = 100 * time.Millisecond
	f.start(t, cfg)
	localWait(t, "the cleanup loop", func() bool { return len(f.buildContainers(t, "build-finished-2")) == 0 })
}

// TestLocalNoEngine fails builds with what is missing and how to fix it.
func TestLocalNoEngine(t *testing.T) {
	dir := t.TempDir()
	refused := filepath.Join(dir, "refused.sock")
	ln, err := net.Listen("unix", refused)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody listens
	tests := []struct{ host, want string }{
		{"unix://" + filepath.Join(dir, "missing.sock"), "No container engine found at unix://" + filepath.Join(dir, "missing.sock") +
			": install Docker (apt-get install docker.io) or Podman, or set DOCKER_HOST.\n"},
		{"unix://" + refused, "The container engine at unix://" + refused +
			" is not running (connection refused): start it (systemctl start docker) or set DOCKER_HOST.\n"},
	}
	for _, tc := range tests {
		cl, err := dockerclient.New(dockerclient.WithHost(tc.host))
		if err != nil {
			t.Fatal(err)
		}
		l, err := builder.NewLocal(cl, builder.LocalConfig{EngineHost: tc.host, Build: builder.KubeConfig{PodConfig: builder.PodConfig{BuildImage: "x"}}}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		err = l.Run(t.Context(), binderbuild.BuildRequest{Name: "build-x", RepoURL: "https://example.org/x", Ref: "main", Image: "127.0.0.1:5000/x:1"}, events.NewLog(0))
		var fail *events.Failure
		if !errors.As(err, &fail) || fail.Cause != events.CauseFailed {
			t.Fatalf("Run = %v, want a failure", err)
		}
		if want := string(events.Failed(0, tc.want).Data); string(fail.Event.Data) != want {
			t.Errorf("failed event = %s, want %s", fail.Event.Data, want)
		}
		if err := l.Check(t.Context()); err == nil || err.Error() != strings.TrimSpace(tc.want) {
			t.Errorf("Check = %v, want %q", err, strings.TrimSpace(tc.want))
		}
	}
	if _, err := builder.NewLocal(nil, builder.LocalConfig{EngineHost: "tcp://127.0.0.1:2375"}, nil); err == nil ||
		!strings.Contains(err.Error(), `invalid DOCKER_HOST="tcp://127.0.0.1:2375"`) {
		t.Errorf("NewLocal with a TCP engine: %v, want an invalid DOCKER_HOST error", err)
	}
}

// localHolds is an HTTP server on 127.0.0.1 whose /hold/<key> answers only once
// the test releases key: the fake repo2docker waits on it.
type localHolds struct {
	url0 string
	mu   sync.Mutex
	keys map[string]*localHold
}

type localHold struct {
	arrived, released chan struct{}
	once              sync.Once
}

func newLocalHolds(t *testing.T) *localHolds {
	h := &localHolds{keys: make(map[string]*localHold)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := h.get(strings.TrimPrefix(r.URL.Path, "/hold/"))
		k.once.Do(func() { close(k.arrived) })
		select {
		case <-k.released:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		h.mu.Lock()
		for _, k := range h.keys {
			select {
			case <-k.released:
			default:
				close(k.released)
			}
		}
		h.mu.Unlock()
		srv.Close()
	})
	h.url0 = srv.URL
	return h
}

func (h *localHolds) get(key string) *localHold {
	h.mu.Lock()
	defer h.mu.Unlock()
	k, ok := h.keys[key]
	if !ok {
		k = &localHold{arrived: make(chan struct{}), released: make(chan struct{})}
		h.keys[key] = k
	}
	return k
}

func (h *localHolds) url(key string) string { return h.url0 + "/hold/" + key }

func (h *localHolds) release(key string) { close(h.get(key).released) }

func (h *localHolds) waitArrived(t *testing.T, key string) {
	t.Helper()
	select {
	case <-h.get(key).arrived:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the build of %s did not reach its hold", key)
	}
}

func localEvents(log *events.Log) []events.Event {
	evs, _, _, _ := log.Read(0)
	return evs
}

func localWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func localIDs(cs []container.Summary) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID[:12])
	}
	return out
}

func localNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// localLogWriter sends the executor's log to the test log.
type localLogWriter struct{ t *testing.T }

func (w localLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Two images whose build names collide build separately and at once: the
// container of the second takes the name derived from its image, and each
// build pushes its own image.
func TestLocalBuildNameCollision(t *testing.T) {
	f := newLocalFixture(t)
	l, _ := f.start(t, f.config())
	a := f.request(t, "clash-a", localScratchRepo(map[string]string{".fake-r2d/hold": f.holds.url("clash-a")}))
	b := f.request(t, "clash-b", localScratchRepo(map[string]string{".fake-r2d/hold": f.holds.url("clash-b")}))
	b.Name = a.Name // as two slugs whose names hash alike
	done := make(chan error, 2)
	for hold, req := range map[string]binderbuild.BuildRequest{"clash-a": a, "clash-b": b} {
		go func() {
			_, err := localRun(t, l, req)
			done <- err
		}()
		f.holds.waitArrived(t, hold) // both run at once
	}
	f.holds.release("clash-a")
	f.holds.release("clash-b")
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("build: %v", err)
			}
		case <-time.After(5 * time.Minute):
			t.Fatal("the builds did not end")
		}
	}
	f.checkPushed(t, a.Image)
	f.checkPushed(t, b.Image)
}
