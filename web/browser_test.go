package web_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/repoproviders"
	"github.com/binderbuild/binderbuild/server"
	"github.com/binderbuild/binderbuild/web"
)

// The browser tests drive the page in Debian's headless Chromium against a
// real service whose builds run as pods on the test cluster; the test plays
// the build pod with WritePodLog and FinishPod.

var updateScreenshots = flag.Bool("update-screenshots", false, "also write the README screenshot docs/screenshots/web-ready.png")

// chromiumEnv overrides the browser binary (default /usr/bin/chromium).
const chromiumEnv = "BINDERBUILD_CHROMIUM"

const (
	imagePrefix    = "registry.test/binder/"
	basePath       = "/services/binder/"
	dockerAPILabel = "binderbuild.test/docker-api"
	waitTimeout    = time.Minute
)

// cluster is started by the first test that builds on it.
var cluster = testcluster.Shared{Setup: func(ctx context.Context, c *testcluster.Cluster) error {
	return c.AddNode(ctx, "docker-api-node", map[string]string{dockerAPILabel: "true"}, nil)
}}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	_ = cluster.Stop()
	os.Exit(code)
}

// images is the registry stub: an image exists once the test says so.
type images struct {
	mu    sync.Mutex
	built map[string]bool
}

func (i *images) Exists(_ context.Context, image string) (bool, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.built[image], nil
}

func (i *images) add(image string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.built[image] = true
}

// fakeSHA is the commit the fake GitHub API resolves user/repo/ref to.
func fakeSHA(path string) string {
	sum := sha1.Sum([]byte(path))
	return hex.EncodeToString(sum[:])
}

// fakeGitHub answers GET /repos/<user>/<repo>/commits/<ref> for any ref.
func fakeGitHub(t *testing.T) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/repos/") || !strings.Contains(r.URL.Path, "/commits/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sha": %q}`, fakeSHA(r.URL.Path))
	}))
	t.Cleanup(ts.Close)
	return ts
}

// service is binderbuild with the page, the gh, git and gl providers (gh
// against a fake GitHub API) and, with a cluster, the Kubernetes executor.
type service struct {
	ts     *httptest.Server
	url    string // the page: <server>/services/binder/ui/
	ns     string
	images *images
	github *repoproviders.GitHub
	conns  *connTracker
}

// connTracker records the server's connections so that a test can cut
// them, also those the server took over from net/http (which
// httptest.Server.CloseClientConnections does not see).
type connTracker struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connTracker) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// cut closes every connection accepted so far.
func (l *connTracker) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

type serviceOptions struct {
	cluster   bool                            // build with the Kubernetes executor
	wrap      func(http.Handler) http.Handler // e.g. an authenticating proxy
	providers []server.Provider               // offered after gh, git and gl
}

func startService(t *testing.T, opts serviceOptions) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	gh := fakeGitHub(t)
	s := &service{images: &images{built: map[string]bool{}}}
	s.github = repoproviders.NewGitHub(repoproviders.GitHubConfig{APIBaseURL: gh.URL}, gh.Client(), nil, nil)
	deps := server.Deps{
		Providers: append([]server.Provider{s.github, repoproviders.NewGit(repoproviders.GitConfig{}, nil, nil), repoproviders.NewGitLab(repoproviders.GitLabConfig{}, nil, nil, nil)},
			opts.providers...),
		Images:  s.images,
		Builder: builder.NewShared(ctx, builder.Unavailable("no executor in this test\n"), 0),
		UI:      web.Handler(basePath),
	}
	if opts.cluster {
		c := cluster.Get(t)
		s.ns = c.NewNamespace(t.Context(), t)
		kube, err := builder.NewKube(c.Client(), builder.KubeConfig{PodConfig: builder.PodConfig{
			BuildNamespace:    s.ns,
			BuildImage:        "quay.io/jupyterhub/repo2docker:2024.07.0",
			DockerHost:        "/var/run/docker.sock",
			BuildNodeSelector: map[string]string{dockerAPILabel: "true"},
			BuildTimeout:      time.Hour,
		}}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := kube.Start(ctx, ctx); err != nil {
			t.Fatal(err)
		}
		deps.Builder = builder.NewShared(ctx, kube, 0)
	}
	var h http.Handler = server.New(ctx, server.Config{BaseURL: basePath, APIOnly: true, ImagePrefix: imagePrefix}, deps)
	if opts.wrap != nil {
		h = opts.wrap(h)
	}
	s.ts = httptest.NewUnstartedServer(h)
	s.conns = &connTracker{Listener: s.ts.Listener}
	s.ts.Listener = s.conns
	s.ts.Start()
	s.url = s.ts.URL + basePath + "ui/"
	t.Cleanup(func() { s.ts.CloseClientConnections(); s.ts.Close(); cancel() })
	return s
}

// image is the image name the service gives a gh build of user/repo at ref.
func (s *service) image(t *testing.T, spec string) string {
	t.Helper()
	repo, err := s.github.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.github.Resolve(t.Context(), repo)
	if err != nil {
		t.Fatal(err)
	}
	return binderbuild.ImageName(imagePrefix, res.BuildSlug, res.ResolvedRef)
}

// waitPod returns the build pod once it runs.
func (s *service) waitPod(t *testing.T) string {
	t.Helper()
	var name string
	poll(t, "a running build pod", func() bool {
		pods, err := cluster.Get(t).Client().CoreV1().Pods(s.ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				name = p.Name
				return true
			}
		}
		return false
	})
	return name
}

func (s *service) writeLog(t *testing.T, pod string, lines ...string) {
	t.Helper()
	if err := cluster.Get(t).WritePodLog(t.Context(), s.ns, pod, "builder", lines...); err != nil {
		t.Fatal(err)
	}
}

func (s *service) finish(t *testing.T, pod string, outcome testcluster.Outcome) {
	t.Helper()
	if err := cluster.Get(t).EndPodLog(t.Context(), s.ns, pod, "builder"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Get(t).FinishPod(t.Context(), s.ns, pod, outcome); err != nil {
		t.Fatal(err)
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// browser is one headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	js  []string // uncaught exceptions
}

// chromiumPath returns the browser binary or fails the test, naming the
// make target that installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv(chromiumEnv)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("headless Chromium not found at %s (%v): run `make browser-deps` (tools/browser-deps.sh installs Debian's chromium package), or set %s", path, err, chromiumEnv)
	}
	return path
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	dir, err := os.MkdirTemp("", "binderbuild-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 1000),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		_ = os.RemoveAll(dir)
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.js {
			t.Errorf("uncaught JavaScript exception: %s", e)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	b.listen()
	return b
}

// listen records uncaught exceptions and logs console messages.
func (b *browser) listen() {
	err := chromedp.Listen(b.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := fmt.Sprintf("%s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			b.mu.Lock()
			b.js = append(b.js, msg)
			b.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			b.t.Logf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
}

// newTab opens another tab in the same browser.
func (b *browser) newTab() *browser {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	nb := &browser{t: b.t, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	nb.listen()
	b.t.Cleanup(func() {
		nb.mu.Lock()
		defer nb.mu.Unlock()
		for _, e := range nb.js {
			b.t.Errorf("uncaught JavaScript exception: %s", e)
		}
	})
	return nb
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\npage state: %s", err, b.state())
	}
}

// evalJS evaluates a JavaScript expression; opts may be
// chromedp.EvalAwaitPromise.
func evalJS[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v\npage state: %s", expr, err, b.state())
	}
	return v
}

func (b *browser) text(expr string) string {
	b.t.Helper()
	return evalJS[string](b, expr)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// state describes the page for failure messages.
func (b *browser) state() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({data: Object.assign({}, document.body.dataset),
		status: document.getElementById('status').textContent,
		error: document.getElementById('error').innerText,
		logTail: Array.from(document.querySelectorAll('#log .line')).slice(-5).map(l => l.textContent)})`))
	return s
}

// waitJS waits until the JavaScript expression is true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s (%s); err %v\npage state: %s", what, expr, err, b.state())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (b *browser) waitPhase(phase string) {
	b.t.Helper()
	b.waitJS("phase "+phase, fmt.Sprintf(`document.body.dataset.phase === %q`, phase))
}

// screenshot saves a full-page PNG under <repo>/out/screenshots and returns
// its path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join(repoRoot(b.t), "out", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// r2d builds one repo2docker --json-logs line.
func r2d(phase, message string) string {
	m := map[string]any{"message": message}
	if phase != "" {
		m["phase"] = phase
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func pushing(progress map[string]any) string {
	b, _ := json.Marshal(map[string]any{"message": "Pushing image\n", "progress": progress, "layers": map[string]any{}, "phase": "pushing"})
	return string(b)
}

// TestBrowserBuild builds a GitHub repository pasted as a URL, watching the
// phases, the log (thousands of lines, ANSI colours, markup as text) and the
// push progress, up to the image name; the shareable link then re-opens the
// build.
func TestBrowserBuild(t *testing.T) {
	svc := startService(t, serviceOptions{cluster: true})
	b := newBrowser(t)
	b.run(chromedp.Navigate(svc.url))
	b.waitJS("providers", `document.body.dataset.providers === 'loaded' && document.body.dataset.ready === 'true'`)
	options := evalJS[[]string](b, `Array.from(document.querySelectorAll('#provider option')).map(o => o.value + ':' + o.textContent)`)
	if got, want := strings.Join(options, ","), "gh:GitHub,git:Git repository,gl:GitLab"; got != want {
		t.Errorf("provider options = %s, want %s", got, want)
	}

	// Keyboard only: type the URL, press Enter.
	b.run(chromedp.Focus(chromedp.ID("repo")), chromedp.SendKeys(chromedp.ID("repo"), "https://github.com/binder-examples/requirements"))
	if got := b.text(`document.getElementById('provider-hint').textContent`); got != "Detected GitHub: binder-examples/requirements." {
		t.Errorf("provider hint = %q, want the detected GitHub repository", got)
	}
	if got := b.text(`document.getElementById('ref').value`); got != "HEAD" {
		t.Errorf("ref = %q, want HEAD", got)
	}
	b.run(chromedp.SendKeys(chromedp.ID("repo"), kb.Enter))
	b.waitPhase("waiting")

	pod := svc.waitPod(t)
	svc.writeLog(t, pod, r2d("", "Picked Git content provider.\n"), r2d("fetching", "Cloning into '/tmp/repo2docker7w1g2'...\n"))
	b.waitPhase("fetching")
	b.waitJS("waiting done, fetching current", `document.querySelector('#phases [data-phase=waiting]').classList.contains('done') &&
		document.querySelector('#phases [data-phase=fetching]').getAttribute('aria-current') === 'step'`)

	const steps = 6000 // more than the page keeps
	lines := []string{
		r2d("building", "Step 1/4 : FROM docker.io/library/buildpack-deps:jammy\n"),
	}
	for i := 1; i <= steps; i++ {
		lines = append(lines, r2d("building", fmt.Sprintf("Collecting package-%d (from -r requirements.txt (line %d))\n", i, i)))
	}
	lines = append(lines,
		r2d("building", "\x1b[1;33mWARNING:\x1b[0m a package printed markup: "+`<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`+"\n"),
		r2d("building", "Step 4/4 : CMD [\"jupyter\", \"notebook\", \"--ip\", \"0.0.0.0\"]\n"),
		r2d("building", "\x1b[32mSuccessfully built 3f6b3b5b1c2d\x1b[0m\n"),
		r2d("building", "Successfully tagged "+svc.image(t, "binder-examples/requirements/HEAD")+"\n"))
	svc.writeLog(t, pod, lines...)
	b.waitPhase("building")
	b.waitJS("the last build line", `Array.from(document.querySelectorAll('#log .line')).some(l => l.textContent.startsWith('Successfully tagged'))`)

	svc.writeLog(t, pod,
		pushing(map[string]any{
			"sha256:5f70bf18a086": map[string]any{"current": 31457280, "total": 73400320},
			"sha256:9e0c2a7d42ab": map[string]any{"current": 1048576, "total": 20971520},
			"sha256:0c1dd3b2f8a4": "Layer already exists",
		}))
	b.waitPhase("pushing")
	b.waitJS("three layer bars", `document.querySelectorAll('#layers progress').length === 3`)
	type layerBar struct {
		Value, Max float64
		Status     string
	}
	bar := evalJS[layerBar](b, `(() => { const li = document.querySelector('#layers [title="sha256:5f70bf18a086"]').parentElement; const p = li.querySelector('progress');
		return {value: p.value, max: p.max, status: li.querySelector('.layer-status').textContent}; })()`)
	if bar.Value != 31457280 || bar.Max != 73400320 || bar.Status != "31.5 MB / 73.4 MB" {
		t.Errorf("first layer bar = %+v, want 31457280 of 73400320, 31.5 MB / 73.4 MB", bar)
	}
	svc.writeLog(t, pod,
		pushing(map[string]any{
			"sha256:5f70bf18a086": map[string]any{"current": 62914560, "total": 73400320},
			"sha256:9e0c2a7d42ab": "Pushed",
			"sha256:0c1dd3b2f8a4": "Layer already exists",
		}),
		r2d("pushing", "Successfully pushed "+svc.image(t, "binder-examples/requirements/HEAD")))
	b.waitJS("second layer pushed", `document.querySelector('#layers [title="sha256:9e0c2a7d42ab"]').parentElement.querySelector('progress').value === 1`)
	svc.finish(t, pod, testcluster.Succeeded())
	b.waitPhase("ready")

	want := svc.image(t, "binder-examples/requirements/HEAD")
	if got := b.text(`document.getElementById('image-name').textContent`); got != want {
		t.Errorf("image name = %q, want %q", got, want)
	}
	if got := b.text(`document.getElementById('status').textContent`); got != "Ready: the image is built." {
		t.Errorf("status = %q, want Ready", got)
	}
	if !evalJS[bool](b, `Array.from(document.querySelectorAll('#phases li')).every(li => li.classList.contains('done'))`) {
		t.Error("not every phase is marked done")
	}

	// Log: capped, coloured, and markup shown as text.
	type logState struct {
		Lines   int
		Trimmed string
		XSS     any
		Tags    int
		Markup  bool
		Green   string
		Bold    string
	}
	log := evalJS[logState](b, `({lines: document.querySelectorAll('#log .line').length,
		trimmed: document.getElementById('log-trimmed').hidden ? '' : document.getElementById('log-trimmed').textContent,
		xss: window.__xss === undefined ? null : window.__xss,
		tags: document.querySelectorAll('#log img, #log script').length,
		markup: Array.from(document.querySelectorAll('#log .line')).some(l => l.textContent.endsWith('<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>')),
		green: (document.querySelector('#log .ansi-fg-2') || {}).textContent || '',
		bold: Array.from(document.querySelectorAll('#log .ansi-bold.ansi-fg-3')).map(s => s.textContent).join('')})`)
	if log.Lines != 5000 || !strings.Contains(log.Trimmed, "earlier log lines are not shown") {
		t.Errorf("log has %d lines, trimmed note %q; want 5000 and a note", log.Lines, log.Trimmed)
	}
	if log.XSS != nil || log.Tags != 0 || !log.Markup {
		t.Errorf("log markup: window.__xss = %v, %d img/script elements in the log, shown as text: %v; want no script run, no elements, the text shown", log.XSS, log.Tags, log.Markup)
	}
	if log.Bold != "WARNING:" {
		t.Errorf("bold yellow ANSI text = %q, want WARNING:", log.Bold)
	}
	if log.Green != "Successfully built 3f6b3b5b1c2d" {
		t.Errorf("green ANSI span = %q, want %q", log.Green, "Successfully built 3f6b3b5b1c2d")
	}

	share := b.text(`document.getElementById('share-url').value`)
	if wantQ := "?provider=gh&repo=binder-examples%2Frequirements&ref=HEAD"; !strings.HasSuffix(share, basePath+"ui/"+wantQ) {
		t.Errorf("share URL = %q, want it to end in %s", share, basePath+"ui/"+wantQ)
	}
	if got := b.text(`location.href`); got != share {
		t.Errorf("location = %q, want the share URL %q", got, share)
	}

	evalJS[chromedp.Void](b, `document.activeElement.blur(), window.scrollTo(0, 0)`)
	path := b.screenshot("web-ready.png")
	if *updateScreenshots {
		copyFile(t, path, filepath.Join(repoRoot(t), "docs", "screenshots", "web-ready.png"))
	}

	// The link re-opens the build: the image is in the registry now.
	svc.images.add(want)
	tab := b.newTab()
	tab.run(chromedp.Navigate(share))
	tab.waitPhase("ready")
	if got := tab.text(`document.getElementById('image-name').textContent`); got != want {
		t.Errorf("re-opened build: image name = %q, want %q", got, want)
	}
	if got := tab.text(`document.getElementById('log').textContent`); !strings.Contains(got, "Done! Found built image") {
		t.Errorf("re-opened build: log = %q, want the cached-image message", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", to)
}

// TestBrowserFailure opens a shared link whose build fails: the page shows
// the failed phase and the executor's message, and offers to try again.
func TestBrowserFailure(t *testing.T) {
	svc := startService(t, serviceOptions{cluster: true})
	b := newBrowser(t)
	b.run(chromedp.Navigate(svc.url + "?provider=gh&repo=binder-examples/broken&ref=main"))
	b.waitPhase("waiting")
	pod := svc.waitPod(t)
	svc.writeLog(t, pod,
		r2d("fetching", "Cloning into '/tmp/repo2dockerq1'...\n"),
		r2d("building", "Step 1/3 : FROM docker.io/library/buildpack-deps:jammy\n"),
		r2d("building", "\x1b[31mERROR: No matching distribution found for nosuchpackage\x1b[0m\n"))
	b.waitPhase("building")
	svc.finish(t, pod, testcluster.Failed(2))
	b.waitJS("failed state", `document.body.dataset.state === 'failed'`)

	type failState struct {
		Phase, Title, Message, Status string
		Failed                        string
		Retry, Button                 bool
	}
	got := evalJS[failState](b, `({phase: document.body.dataset.phase,
		title: document.getElementById('error-title').textContent,
		message: document.getElementById('error-message').textContent,
		status: document.getElementById('status').textContent,
		failed: (document.querySelector('#phases li.failed') || {dataset: {}}).dataset.phase || '',
		retry: !document.getElementById('retry').hidden,
		button: !document.getElementById('build').disabled})`)
	if got.Phase != "failed" || got.Title != "Build failed" || got.Failed != "building" || !got.Retry || !got.Button {
		t.Errorf("failure state = %+v, want phase failed, title Build failed, building marked failed, retry shown, Build enabled", got)
	}
	if !strings.HasPrefix(got.Message, "repo2docker exited with code 2.") || !strings.Contains(got.Message, "\nERROR: No matching distribution") || strings.Contains(got.Message, "\x1b") {
		t.Errorf("error message = %q, want the executor's reason and last lines, without ANSI escapes", got.Message)
	}
	if got.Status != "Build failed while building." {
		t.Errorf("status = %q, want %q", got.Status, "Build failed while building.")
	}
	b.screenshot("web-failed.png")
}

// TestBrowserDisconnected cuts the stream mid-build: the page says so, and
// "Try again" re-attaches to the build, which still runs.
func TestBrowserDisconnected(t *testing.T) {
	svc := startService(t, serviceOptions{cluster: true})
	b := newBrowser(t)
	b.run(chromedp.Navigate(svc.url + "?provider=gh&repo=binder-examples/flaky&ref=HEAD"))
	pod := svc.waitPod(t)
	svc.writeLog(t, pod, r2d("fetching", "Cloning into '/tmp/repo2dockerz9'...\n"))
	b.waitPhase("fetching")
	svc.conns.cut()
	b.waitJS("disconnected state", `document.body.dataset.state === 'disconnected'`)
	if got := b.text(`document.getElementById('error-title').textContent`); got != "Disconnected" {
		t.Errorf("error title = %q, want Disconnected", got)
	}
	if got := b.text(`document.getElementById('error-message').textContent`); !strings.Contains(got, "last phase: fetching") {
		t.Errorf("error message = %q, want the last phase", got)
	}
	b.run(chromedp.Click(chromedp.ID("retry")))
	b.waitJS("running again", `document.body.dataset.state === 'running'`)
	svc.writeLog(t, pod, r2d("building", "Step 1/1 : FROM scratch\n"))
	b.waitPhase("building")
	svc.finish(t, pod, testcluster.Succeeded())
	b.waitPhase("ready")
	if got, want := b.text(`document.getElementById('image-name').textContent`), svc.image(t, "binder-examples/flaky/HEAD"); got != want {
		t.Errorf("image name = %q, want %q", got, want)
	}
}

// TestBrowserAuth puts the service behind a proxy that wants a token: the
// page shows "Authentication required", and the token field gets the build
// through as Authorization: Bearer.
func TestBrowserAuth(t *testing.T) {
	const token = "s3cret-t0ken"
	var mu sync.Mutex
	var sawToken bool
	svc := startService(t, serviceOptions{wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/build/") {
				if r.Header.Get("Authorization") != "Bearer "+token {
					w.Header().Set("Content-Type", "text/event-stream")
					fmt.Fprint(w, "data: {\"phase\": \"failed\", \"status_code\": 403, \"message\": \"Forbidden\\n\"}\n\n")
					return
				}
				mu.Lock()
				sawToken = true
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}})
	image := svc.image(t, "org/private/HEAD")
	svc.images.add(image)
	b := newBrowser(t)
	b.run(chromedp.Navigate(svc.url))
	b.waitJS("page ready", `document.body.dataset.ready === 'true'`)
	b.run(chromedp.SendKeys(chromedp.ID("repo"), "org/private"+kb.Enter))
	b.waitJS("auth state", `document.body.dataset.state === 'auth'`)
	if got := b.text(`document.getElementById('error-title').textContent`); got != "Authentication required" {
		t.Errorf("error title = %q, want Authentication required", got)
	}
	if got := b.text(`document.activeElement.id`); got != "token" {
		t.Errorf("focus on %q, want the token field", got)
	}
	b.run(chromedp.SendKeys(chromedp.ID("token"), token+kb.Enter))
	b.waitPhase("ready")
	if got := b.text(`document.getElementById('image-name').textContent`); got != image {
		t.Errorf("image name = %q, want %q", got, image)
	}
	if got := b.text(`location.search`); strings.Contains(got, token) {
		t.Errorf("the token leaked into the URL: %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawToken {
		t.Error("no request carried the token")
	}
}

// TestBrowserHelpers checks the page's URL detection, spec building and ANSI
// parser with the providers the service lists.
func TestBrowserHelpers(t *testing.T) {
	svc := startService(t, serviceOptions{})
	b := newBrowser(t)
	b.run(chromedp.Navigate(svc.url))
	b.waitJS("providers", `document.body.dataset.providers === 'loaded'`)

	detect := []struct{ in, want string }{
		{"https://github.com/org/repo", "gh org/repo "},
		{"http://github.com/org/repo/", "gh org/repo "},
		{"https://github.com/org/repo.git", "gh org/repo "},
		{"https://github.com/org/repo/tree/feature/x", "gh org/repo feature/x"},
		{"https://gitlab.com/group/sub/project", "gl group/sub/project "},
		{"https://gitlab.com/group/project/-/tree/v1.0", "gl group/project v1.0"},
		{"https://git.example.com/team/repo.git", "git https://git.example.com/team/repo.git "},
		{"https://codeberg.org/org/repo/", "git https://codeberg.org/org/repo "},
		{"git@github.com:org/repo", "git git@github.com:org/repo "},
		{"org/repo", "null"},
		{"", "null"},
	}
	for _, tc := range detect {
		got := b.text(fmt.Sprintf(`(() => { const d = binderbuild.detect(%s); return d ? d.provider + ' ' + d.repo + ' ' + d.ref : 'null'; })()`, jsString(tc.in)))
		if got != tc.want {
			t.Errorf("detect(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}

	specs := []struct{ provider, repo, ref, want string }{
		{"gh", "org/repo", "HEAD", "gh/org/repo/HEAD"},
		{"gh", "org/repo", "feature/x", "gh/org/repo/feature/x"},
		{"gh", "org/repo", "a#b?c", "gh/org/repo/a%23b%3Fc"},
		{"gh", "org/repo", "", "gh/org/repo/HEAD"},
		{"gl", "group/project", "v1.0", "gl/group%2Fproject/v1.0"},
		{"git", "https://git.example.com/repo.git", "main", "git/https%3A%2F%2Fgit.example.com%2Frepo.git/main"},
	}
	for _, tc := range specs {
		got := evalJS[string](b, fmt.Sprintf(`fetch('../api/repoproviders').then(r => r.json()).then(l => binderbuild.makeSpec(l.find(p => p.id === %s), %s, %s))`,
			jsString(tc.provider), jsString(tc.repo), jsString(tc.ref)), chromedp.EvalAwaitPromise)
		if got != tc.want {
			t.Errorf("makeSpec(%s, %q, %q) = %q, want %q", tc.provider, tc.repo, tc.ref, got, tc.want)
		}
	}

	ansi := []struct{ in, want string }{
		{"plain", `[{"text":"plain"}]`},
		{"\x1b[1;31mred\x1b[0m plain", `[{"text":"red","bold":true,"fg":1},{"text":" plain"}]`},
		{"\x1b[92mbright\x1b[39;44m bg", `[{"text":"bright","fg":10},{"text":" bg","bg":4}]`},
		{"\x1b[38;5;208mor\x1b[38;2;1;2;3mrgb\x1b[K", `[{"text":"or","fg":"rgb(255,135,0)"},{"text":"rgb","fg":"rgb(1,2,3)"}]`},
		{"\x1b[38;5;244mgrey", `[{"text":"grey","fg":"rgb(128,128,128)"}]`},
		{"\x1b]0;title\x07a\x1b[2Jb\x07c", `[{"text":"a"},{"text":"bc"}]`},
		{"\x1b[4munder\x1b[24m\x1b[3mit\x1b[m", `[{"text":"under","underline":true},{"text":"it","italic":true}]`},
	}
	for _, tc := range ansi {
		got := b.text(fmt.Sprintf(`JSON.stringify(binderbuild.parseANSI(%s).map(s => {
			const o = {text: s.text};
			for (const k of ['bold', 'dim', 'italic', 'underline']) if (s[k]) o[k] = true;
			if (s.fg !== null) o.fg = s.fg;
			if (s.bg !== null) o.bg = s.bg;
			return o; }))`, jsString(tc.in)))
		if got != tc.want {
			t.Errorf("parseANSI(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestBrowserAccessibility checks labels, the keyboard path through the
// form and the contrast of the page's text.
func TestBrowserAccessibility(t *testing.T) {
	svc := startService(t, serviceOptions{})
	b := newBrowser(t)
	b.run(chromedp.Navigate(svc.url))
	b.waitJS("providers", `document.body.dataset.providers === 'loaded'`)

	unlabelled := evalJS[[]string](b, `Array.from(document.querySelectorAll('input, select, textarea, output')).filter(el => el.labels.length === 0).map(el => el.id)`)
	if len(unlabelled) > 0 {
		t.Errorf("controls without a label: %v", unlabelled)
	}

	var order []string
	for range 6 {
		b.run(chromedp.KeyEvent(kb.Tab))
		order = append(order, b.text(`document.activeElement.id || document.activeElement.tagName.toLowerCase()`))
	}
	// "a" is the skip link, "summary" opens the token field.
	if got, want := strings.Join(order, " "), "a provider repo ref summary build"; got != want {
		t.Errorf("tab order = %s, want %s", got, want)
	}
	outline := evalJS[string](b, `getComputedStyle(document.activeElement).outlineStyle`)
	if outline == "none" || outline == "" {
		t.Errorf("focused Build button has outline %q, want a visible focus ring", outline)
	}

	// Show every state's elements, then check each text's contrast.
	evalJS[bool](b, `(() => {
		for (const id of ['progress', 'error', 'result', 'share', 'layers-box', 'log-trimmed']) document.getElementById(id).hidden = false;
		document.getElementById('error-title').textContent = 'Build failed';
		document.getElementById('error-message').textContent = 'message';
		document.getElementById('image-name').textContent = 'registry/image:tag';
		document.getElementById('log-trimmed').textContent = 'note';
		document.getElementById('status').textContent = 'status';
		document.getElementById('provider-hint').textContent = 'hint';
		const li = document.querySelectorAll('#phases li');
		li[0].classList.add('done'); li[1].classList.add('current'); li[2].classList.add('failed');
		const log = document.getElementById('log');
		for (let i = 0; i < 16; i++) { const s = document.createElement('span'); s.className = 'ansi-fg-' + i; s.textContent = 'c' + i; log.appendChild(s); }
		const m = document.createElement('div'); m.className = 'line meta'; m.textContent = 'meta'; log.appendChild(m);
		return true; })()`)
	low := evalJS[[]string](b, `(() => {
		const lum = c => { const v = c.match(/[\d.]+/g).slice(0, 3).map(Number).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
		const bg = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; if (!/rgba\(.*, 0\)$/.test(c) && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
		const out = [];
		for (const el of document.querySelectorAll('h1, h2, h3, p, label, summary, button, li, output, span, #log .line, input, select')) {
			if (!el.textContent.trim() && el.tagName !== 'INPUT') continue;
			if (el.closest('[hidden]') || el.classList.contains('sr') || el.classList.contains('skip')) continue;
			if (/^ansi-bg-/.test(el.className)) continue;
			const a = lum(getComputedStyle(el).color), b = lum(bg(el));
			const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
			if (ratio < 4.5) out.push((el.id || el.className || el.tagName) + ': ' + ratio.toFixed(2));
		}
		return out; })()`)
	if len(low) > 0 {
		t.Errorf("text below 4.5:1 contrast: %v", low)
	}
}
