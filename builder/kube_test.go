package builder_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmaxmax/go-sse"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/server"
)

// cluster is shared by the tests of this package that need one, started
// by the first; each test has its own namespace and executor.
var cluster = testcluster.Shared{Setup: func(ctx context.Context, c *testcluster.Cluster) error {
	return c.AddNode(ctx, "docker-api-node", map[string]string{dockerAPILabel: "true"}, nil)
}}

const dockerAPILabel = "binderbuild.test/docker-api"

func TestMain(m *testing.M) {
	if n, _ := strconv.Atoi(os.Getenv(benchClientEnv)); n > 0 {
		if err := runBenchClient(n, os.Getenv("BINDERBUILD_BENCH_URL")); err != nil {
			fmt.Fprintln(os.Stderr, "bench client:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop test cluster:", err)
	}
	os.Exit(code)
}

// repoProvider resolves "<repo>/<ref>" specs: repo names the repository,
// ref is used as the resolved ref.
type repoProvider struct{}

func (repoProvider) Prefix() string { return "gh" }
func (repoProvider) Display() any   { return nil }
func (repoProvider) Parse(spec string) (binderbuild.Repo, error) {
	repo, ref, _ := strings.Cut(spec, "/")
	return binderbuild.Repo{Provider: "gh", Spec: spec, URL: "https://github.com/test/" + repo, Ref: ref, BuildSlug: "test-" + repo}, nil
}
func (repoProvider) Resolve(_ context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	return binderbuild.Resolved{Repo: repo, ResolvedRef: repo.Ref}, nil
}

type notBuilt struct{}

func (notBuilt) Exists(context.Context, string) (bool, error) { return false, nil }

// service is a server with a Kubernetes executor on the test cluster.
type service struct {
	url  string
	ns   string
	kube *builder.Kube
	stop context.CancelFunc
}

// serviceOption changes how startService builds a service.
type serviceOption func(*serviceDeps)

type serviceDeps struct {
	client kubernetes.Interface
	log    *slog.Logger
}

// withClient gives the executor its own client (e.g. one whose transport the
// test controls).
func withClient(c kubernetes.Interface) serviceOption {
	return func(d *serviceDeps) { d.client = c }
}

// withLogger gives the executor a logger the test reads.
func withLogger(l *slog.Logger) serviceOption {
	return func(d *serviceDeps) { d.log = l }
}

func startService(t *testing.T, ns string, cfg builder.KubeConfig, opts ...serviceOption) *service {
	t.Helper()
	deps := serviceDeps{client: cluster.Get(t).Client(), log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&deps)
	}
	cfg.BuildNamespace = ns
	if cfg.BuildImage == "" {
		cfg.BuildImage = "quay.io/jupyterhub/repo2docker:2024.07.0"
	}
	if cfg.DockerHost == "" {
		cfg.DockerHost = "/var/run/docker.sock"
	}
	if cfg.BuildNodeSelector == nil {
		cfg.BuildNodeSelector = map[string]string{dockerAPILabel: "true"}
	}
	ctx, cancel := context.WithCancel(t.Context())
	kube, err := builder.NewKube(deps.client, cfg, deps.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.Start(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	srv := server.New(ctx, server.Config{APIOnly: true, ImagePrefix: "registry.test/binder/"}, server.Deps{
		Providers: []server.Provider{repoProvider{}},
		Images:    notBuilt{},
		Builder:   builder.NewShared(ctx, kube, 0),
	})
	ts := httptest.NewServer(srv)
	s := &service{url: ts.URL, ns: ns, kube: kube, stop: func() { ts.CloseClientConnections(); ts.Close(); cancel() }}
	t.Cleanup(s.stop)
	return s
}

// client streams one build request and records its events.
type client struct {
	mu     sync.Mutex
	events []string
	done   chan struct{}
	err    error
}

func (s *service) request(t *testing.T, spec string) *client {
	t.Helper()
	c := &client{done: make(chan struct{})}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url+"/build/gh/"+spec+"?build_only=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	go func() {
		defer close(c.done)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c.err = err
			return
		}
		defer resp.Body.Close()
		for ev, err := range sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: 1 << 20}) {
			if err != nil {
				c.err = err
				return
			}
			c.mu.Lock()
			c.events = append(c.events, ev.Data)
			c.mu.Unlock()
		}
	}()
	return c
}

// wait returns the events once the stream ended.
func (c *client) wait(t *testing.T) []string {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("stream did not end; events so far:\n%s", strings.Join(c.snapshot(), "\n"))
	}
	if c.err != nil && c.err != io.EOF {
		t.Fatalf("stream: %v", c.err)
	}
	return c.snapshot()
}

func (c *client) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.events...)
}

// waitEvents waits until the client received at least n events.
func (c *client) waitEvents(t *testing.T, n int) {
	t.Helper()
	poll(t, fmt.Sprintf("%d events", n), func() bool { return len(c.snapshot()) >= n })
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

func buildName(repo, ref string) string { return binderbuild.BuildName("test-"+repo, ref) }

func imageName(repo, ref string) string {
	return binderbuild.ImageName("registry.test/binder/", "test-"+repo, ref)
}

// waitPod waits until the build pod of repo/ref is in phase.
func waitPod(t *testing.T, ns, repo, ref string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	defer func() {
		if t.Failed() {
			dumpPods(t, ns)
		}
	}()
	poll(t, "pod "+buildName(repo, ref)+" "+string(phase), func() bool {
		p, err := cluster.Get(t).Client().CoreV1().Pods(ns).Get(t.Context(), buildName(repo, ref), metav1.GetOptions{})
		if err == nil && p.Status.Phase == phase {
			pod = p
			return true
		}
		return false
	})
	return pod
}

// dumpPods logs the namespace's pods, to see why a wait failed.
func dumpPods(t *testing.T, ns string) {
	pods, err := cluster.Get(t).Client().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Logf("list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s: phase %s node %q deleting %v conditions %+v", p.Name, p.Status.Phase, p.Spec.NodeName, p.DeletionTimestamp != nil, p.Status.Conditions)
	}
}

func writeLog(t *testing.T, ns, pod string, lines ...string) {
	t.Helper()
	if err := cluster.Get(t).WritePodLog(t.Context(), ns, pod, "builder", lines...); err != nil {
		t.Fatal(err)
	}
}

func finish(t *testing.T, ns, pod string, outcome testcluster.Outcome) {
	t.Helper()
	if err := cluster.Get(t).EndPodLog(t.Context(), ns, pod, "builder"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Get(t).FinishPod(t.Context(), ns, pod, outcome); err != nil {
		t.Fatal(err)
	}
}

// repo2docker --json-logs output of a small build.
var r2dLines = []string{
	`{"message": "Picked Git content provider.\n"}`,
	`{"message": "Cloning into '/tmp/repo2dockerabc'...\n", "phase": "fetching"}`,
	`{"message": "Step 1/3 : FROM docker.io/library/buildpack-deps:bionic", "phase": "building"}`,
	`plain output line`,
	`{"message": "Pushing image\n", "progress": {"abc": {"current": 1, "total": 2}}, "layers": {"abc": {"status": "Pushing"}}, "phase": "pushing"}`,
	`{"message": "Successfully pushed registry.test/binder/x", "phase": "pushing"}`,
}

const waitingEvent = `{"phase": "waiting", "message": "Waiting for build to start...\n"}`

func readyEvent(repo, ref string) string {
	return `{"phase": "ready", "message": "Done! Image built\n", "imageName": "` + imageName(repo, ref) + `"}`
}

// forwarded is how r2dLines reach clients.
func forwarded() []string {
	out := append([]string(nil), r2dLines...)
	out[3] = `{"phase": "unknown", "message": "plain output line\n"}`
	return out
}

func assertEvents(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestKubeHappyPath(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svc := startService(t, ns, builder.KubeConfig{})
	c := svc.request(t, "happy/aaa111")
	pod := waitPod(t, ns, "happy", "aaa111", corev1.PodRunning)
	if pod.Spec.NodeName != "docker-api-node" {
		t.Errorf("pod scheduled on %q, want docker-api-node", pod.Spec.NodeName)
	}
	writeLog(t, ns, pod.Name, r2dLines...)
	finish(t, ns, pod.Name, testcluster.Succeeded())
	assertEvents(t, c.wait(t), append(append([]string{waitingEvent}, forwarded()...), readyEvent("happy", "aaa111")))
	poll(t, "pod deleted", func() bool {
		_, err := cluster.Get(t).Client().CoreV1().Pods(ns).Get(t.Context(), pod.Name, metav1.GetOptions{})
		return err != nil
	})
}

func TestKubeWaitsWithSchedulingReason(t *testing.T) {
	tests := []struct {
		name string
		cfg  builder.KubeConfig
		want string
	}{
		{"node selector", builder.KubeConfig{PodConfig: builder.PodConfig{BuildNodeSelector: map[string]string{"no-such": "label"}}},
			"didn't match Pod's node affinity/selector"},
		{"ephemeral storage", builder.KubeConfig{PodConfig: builder.PodConfig{BuildEphemeralStorageRequest: "5Ti"}},
			"Insufficient ephemeral-storage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := cluster.Get(t).NewNamespace(t.Context(), t)
			svc := startService(t, ns, tc.cfg)
			c := svc.request(t, "unschedulable/bbb222")
			c.waitEvents(t, 2)
			got := c.snapshot()
			if got[0] != waitingEvent || !strings.HasPrefix(got[1], `{"phase": "waiting", "message": "Waiting for a node to run the build: 0/`) || !strings.Contains(got[1], tc.want) {
				t.Errorf("events = %q, want the waiting event, then a waiting event with %q", got, tc.want)
			}
		})
	}
}

func TestKubeFailures(t *testing.T) {
	tail := `Last log lines:\nPicked Git content provider.\nCloning into '/tmp/repo2dockerabc'...\nStep 1/3 : FROM docker.io/library/buildpack-deps:bionic\n`
	tests := []struct {
		name    string
		outcome testcluster.Outcome
		lines   []string
		want    string
	}{
		{"exit code", testcluster.Failed(2), r2dLines[:3], `{"phase": "failed", "message": "Build failed: repo2docker exited with code 2.\n` + tail + `"}`},
		{"oom", testcluster.OOMKilled(), r2dLines[:3], `{"phase": "failed", "message": "Build failed: the build ran out of memory (OOMKilled, exit code 137).\n` + tail + `"}`},
		{"deadline", testcluster.DeadlineExceeded(), r2dLines[:3], `{"phase": "failed", "message": "Build failed: the build took longer than its deadline (DeadlineExceeded).\n` + tail + `"}`},
		{"evicted", testcluster.Evicted(), r2dLines[:3], `{"phase": "failed", "message": "Build failed: the build pod was evicted: `},
		{"repo2docker failed line, pod succeeded", testcluster.Succeeded(),
			append(append([]string{}, r2dLines[:3]...), `{"message": "Error during build: boom\n", "phase": "failed"}`),
			`{"message": "Error during build: boom\n", "phase": "failed"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := cluster.Get(t).NewNamespace(t.Context(), t)
			svc := startService(t, ns, builder.KubeConfig{})
			c := svc.request(t, "fails/ccc333")
			pod := waitPod(t, ns, "fails", "ccc333", corev1.PodRunning)
			writeLog(t, ns, pod.Name, tc.lines...)
			finish(t, ns, pod.Name, tc.outcome)
			got := c.wait(t)
			want := append([]string{waitingEvent}, forwarded()[:3]...)
			if len(got) != len(want)+1 || !strings.HasPrefix(got[len(got)-1], tc.want) {
				t.Fatalf("events:\n%s\nwant %d events ending with %s", strings.Join(got, "\n"), len(want)+1, tc.want)
			}
			assertEvents(t, got[:len(want)], want)
		})
	}
}

func TestKubeSharedBuild(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svc := startService(t, ns, builder.KubeConfig{})
	const n = 50
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = svc.request(t, "shared/ddd444")
	}
	pod := waitPod(t, ns, "shared", "ddd444", corev1.PodRunning)
	writeLog(t, ns, pod.Name, r2dLines[:3]...)
	clients[0].waitEvents(t, 4)
	late := svc.request(t, "shared/ddd444") // joins after three log lines
	late.waitEvents(t, 4)
	writeLog(t, ns, pod.Name, r2dLines[3:]...)
	finish(t, ns, pod.Name, testcluster.Succeeded())
	want := append(append([]string{waitingEvent}, forwarded()...), readyEvent("shared", "ddd444"))
	for _, c := range append(clients, late) {
		assertEvents(t, c.wait(t), want)
	}
	pods, err := cluster.Get(t).Client().CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) > 1 {
		t.Errorf("%d pods, want at most one", len(pods.Items))
	}
}

func TestKubeQueue(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svc := startService(t, ns, builder.KubeConfig{ConcurrentBuildLimit: 1})
	first := svc.request(t, "first/eee555")
	podA := waitPod(t, ns, "first", "eee555", corev1.PodRunning)
	second := svc.request(t, "second/fff666")
	second.waitEvents(t, 2) // queued first
	third := svc.request(t, "third/ggg777")
	third.waitEvents(t, 2)
	finish(t, ns, podA.Name, testcluster.Succeeded())
	assertEvents(t, first.wait(t), []string{waitingEvent, readyEvent("first", "eee555")})
	podB := waitPod(t, ns, "second", "fff666", corev1.PodRunning)
	third.waitEvents(t, 3)
	finish(t, ns, podB.Name, testcluster.Succeeded())
	podC := waitPod(t, ns, "third", "ggg777", corev1.PodRunning)
	finish(t, ns, podC.Name, testcluster.Succeeded())
	queued := func(pos, total int) string {
		return fmt.Sprintf(`{"phase": "waiting", "message": "Waiting for a build slot: position %d of %d in this replica's queue (at most 1 builds run at once).\n"}`, pos, total)
	}
	assertEvents(t, second.wait(t), []string{waitingEvent, queued(1, 1), readyEvent("second", "fff666")})
	assertEvents(t, third.wait(t), []string{waitingEvent, queued(2, 2), queued(1, 1), readyEvent("third", "ggg777")})
}

func TestKubeAPIServerRestart(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svc := startService(t, ns, builder.KubeConfig{})
	c := svc.request(t, "restart/hhh888")
	pod := waitPod(t, ns, "restart", "hhh888", corev1.PodRunning)
	writeLog(t, ns, pod.Name, r2dLines[:3]...)
	c.waitEvents(t, 4)
	if err := cluster.Get(t).RestartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	writeLog(t, ns, pod.Name, r2dLines[3:]...)
	finish(t, ns, pod.Name, testcluster.Succeeded())
	assertEvents(t, c.wait(t), append(append([]string{waitingEvent}, forwarded()...), readyEvent("restart", "hhh888")))
}

func TestKubeServiceRestart(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	old := startService(t, ns, builder.KubeConfig{})
	c := old.request(t, "svcrestart/iii999")
	pod := waitPod(t, ns, "svcrestart", "iii999", corev1.PodRunning)
	writeLog(t, ns, pod.Name, r2dLines[:3]...)
	c.waitEvents(t, 4)
	old.stop() // the service goes away; the pod keeps building

	svc := startService(t, ns, builder.KubeConfig{})
	again := svc.request(t, "svcrestart/iii999")
	again.waitEvents(t, 4)
	writeLog(t, ns, pod.Name, r2dLines[3:]...)
	finish(t, ns, pod.Name, testcluster.Succeeded())
	assertEvents(t, again.wait(t), append(append([]string{waitingEvent}, forwarded()...), readyEvent("svcrestart", "iii999")))
}

func TestKubeCleanup(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	client := cluster.Get(t).Client()
	orphanPod(t, ns, "finished", "", true)
	orphanPod(t, ns, "running", "", false)
	svc := startService(t, ns, builder.KubeConfig{BuildMaxAge: time.Hour, CleanupInterval: 50 * time.Millisecond})
	poll(t, "finished pod deleted", func() bool { return gone(t, client, ns, "finished") })
	if gone(t, client, ns, "running") {
		t.Fatal("a young running pod was deleted")
	}
	svc.stop()
	startService(t, ns, builder.KubeConfig{BuildMaxAge: time.Second, CleanupInterval: 50 * time.Millisecond})
	poll(t, "over-age pod deleted", func() bool { return gone(t, client, ns, "running") })
}

// orphanPod creates a build pod of release that no build follows, waits
// until it runs and, when finished is set, ends it with exit code 1.
func orphanPod(t *testing.T, ns, name, release string, finished bool) {
	t.Helper()
	client := cluster.Get(t).Client()
	_, err := client.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"component": "binderhub-build", "binderbuild.org/release": release}},
		Spec: corev1.PodSpec{NodeSelector: map[string]string{dockerAPILabel: "true"},
			Containers: []corev1.Container{{Name: "builder", Image: "x"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitRunning(t, client, ns, name)
	if !finished {
		return
	}
	if err := cluster.Get(t).FinishPod(t.Context(), ns, name, testcluster.Failed(1)); err != nil {
		t.Fatal(err)
	}
}

func waitRunning(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	poll(t, name+" running", func() bool {
		p, err := client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
}

func gone(t *testing.T, client kubernetes.Interface, ns, name string) bool {
	_, err := client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	return err != nil
}

// collidingRepos returns two repositories of the test provider whose builds
// at ref share upstream's build name: the name keeps 43 escaped characters
// of the slug and 24 bits of its hash, so a birthday search takes a few
// thousand tries.
func collidingRepos(ref string) (a, b string) {
	seen := make(map[string]string)
	base := strings.Repeat("c", 45)
	for i := 0; ; i++ {
		repo := base + strconv.Itoa(i)
		name := buildName(repo, ref)
		if other, ok := seen[name]; ok {
			return other, repo
		}
		seen[name] = repo
	}
}

// podOf waits for the running build pod of image.
func podOf(t *testing.T, ns, image string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(t, "pod of "+image, func() bool {
		pods, err := cluster.Get(t).Client().CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for i, p := range pods.Items {
			if p.Annotations["binderbuild.org/image"] == image && p.Status.Phase == corev1.PodRunning {
				pod = &pods.Items[i]
				return true
			}
		}
		return false
	})
	return pod
}

// Two repositories whose build names collide build separately and at once,
// and each client receives its own image.
func TestKubeBuildNameCollision(t *testing.T) {
	const ref = "jjj000"
	a, b := collidingRepos(ref)
	if buildName(a, ref) != buildName(b, ref) || imageName(a, ref) == imageName(b, ref) {
		t.Fatalf("%s and %s do not collide", a, b)
	}
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svc := startService(t, ns, builder.KubeConfig{})
	first := svc.request(t, a+"/"+ref)
	podA := podOf(t, ns, imageName(a, ref))
	second := svc.request(t, b+"/"+ref)
	podB := podOf(t, ns, imageName(b, ref))
	if podA.Name != buildName(a, ref) {
		t.Errorf("first pod %s, want upstream's name %s", podA.Name, buildName(a, ref))
	}
	if podB.Name == podA.Name || len(podB.Name) > 63 || !strings.HasPrefix(podB.Name, "build-") {
		t.Errorf("second pod %s: want a distinct name of at most 63 characters", podB.Name)
	}
	finish(t, ns, podB.Name, testcluster.Succeeded())
	assertEvents(t, second.wait(t), []string{waitingEvent, readyEvent(b, ref)})
	finish(t, ns, podA.Name, testcluster.Succeeded())
	assertEvents(t, first.wait(t), []string{waitingEvent, readyEvent(a, ref)})
}

// A service account lacking a permission is told which at start-up.
func TestKubeStartNamesMissingPermissions(t *testing.T) {
	tests := []struct {
		name  string
		rules []rbacv1.PolicyRule
		want  string
	}{
		{"no lease or create", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		}, "the service account may not create pods, get leases.coordination.k8s.io, create leases.coordination.k8s.io, update leases.coordination.k8s.io in namespace %s: grant them with a Role (the chart's rbac.create does)"},
		{"nothing", nil, "the service account may not get pods, list pods, watch pods, create pods, delete pods, get pods/log, get leases.coordination.k8s.io, create leases.coordination.k8s.io, update leases.coordination.k8s.io in namespace %s: grant them with a Role (the chart's rbac.create does)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := cluster.Get(t).NewNamespace(t.Context(), t)
			admin := cluster.Get(t).Client().RbacV1()
			if _, err := admin.Roles(ns).Create(t.Context(), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "builder"}, Rules: tc.rules}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := admin.RoleBindings(ns).Create(t.Context(), &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "builder"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "builder", Namespace: ns}},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "builder"},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			cfg := cluster.Get(t).RestConfig()
			cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":builder",
				Groups: []string{"system:serviceaccounts", "system:authenticated"}}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			kube, err := builder.NewKube(client, builder.KubeConfig{PodConfig: builder.PodConfig{BuildNamespace: ns, DockerHost: "/var/run/docker.sock"}}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			err = kube.Start(t.Context(), t.Context())
			if want := fmt.Sprintf(tc.want, ns); err == nil || err.Error() != want {
				t.Errorf("Start = %v, want %s", err, want)
			}
		})
	}
}

// Two installations in one namespace build the same image in pods of their
// own, and neither cleans up the other's pods.
func TestKubeReleasesApart(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	client := cluster.Get(t).Client()
	orphanPod(t, ns, "orphan-a", "a", true)
	orphanPod(t, ns, "orphan-b", "b", true)
	a := startService(t, ns, builder.KubeConfig{PodConfig: builder.PodConfig{Release: "a"}, CleanupInterval: 50 * time.Millisecond, BuildMaxAge: time.Hour})
	b := startService(t, ns, builder.KubeConfig{PodConfig: builder.PodConfig{Release: "b"}})
	poll(t, "release a's orphan deleted", func() bool { return gone(t, client, ns, "orphan-a") })

	fromA := a.request(t, "apart/ppp111")
	podA := podOf(t, ns, imageName("apart", "ppp111"))
	fromB := b.request(t, "apart/ppp111")
	var podB *corev1.Pod
	poll(t, "release b's pod", func() bool {
		pods, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "binderbuild.org/release=b"})
		for i, p := range pods.Items {
			if err == nil && p.Name != "orphan-b" && p.Status.Phase == corev1.PodRunning {
				podB = &pods.Items[i]
			}
		}
		return podB != nil
	})
	if podA.Labels["binderbuild.org/release"] != "a" || podB.Name == podA.Name {
		t.Errorf("pods %s (release %q) and %s: want one pod per release", podA.Name, podA.Labels["binderbuild.org/release"], podB.Name)
	}
	writeLog(t, ns, podB.Name, r2dLines[:1]...)
	finish(t, ns, podB.Name, testcluster.Succeeded())
	assertEvents(t, fromB.wait(t), []string{waitingEvent, forwarded()[0], readyEvent("apart", "ppp111")})
	finish(t, ns, podA.Name, testcluster.Succeeded())
	assertEvents(t, fromA.wait(t), []string{waitingEvent, readyEvent("apart", "ppp111")})
	if gone(t, client, ns, "orphan-b") {
		t.Error("release a deleted release b's pod")
	}
}

// A memory limit without a request reserves nothing: the API server would
// otherwise make the request equal to the limit.
func TestKubeMemoryRequestZero(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svc := startService(t, ns, builder.KubeConfig{PodConfig: builder.PodConfig{BuildMemoryLimit: "2G"}})
	c := svc.request(t, "memory/qqq111")
	pod := waitPod(t, ns, "memory", "qqq111", corev1.PodRunning)
	res := pod.Spec.Containers[0].Resources
	if req, limit := res.Requests.Memory(), res.Limits.Memory(); !req.IsZero() || limit.String() != "2Gi" {
		t.Errorf("memory request %s, limit %s; want 0 and 2Gi", req, limit)
	}
	if pod.Spec.ActiveDeadlineSeconds != nil {
		t.Errorf("activeDeadlineSeconds %d, want none by default", *pod.Spec.ActiveDeadlineSeconds)
	}
	finish(t, ns, pod.Name, testcluster.Succeeded())
	c.wait(t)
}

// The build timeout counts from the pod's creation, also for a replica
// that attaches later: a pod older than the timeout fails at once, before
// a node for it appears.
func TestKubeDeadlineCountsFromPodCreation(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	selector := map[string]string{"binderbuild.test/late-node": ns}
	cfg := builder.KubeConfig{PodConfig: builder.PodConfig{BuildNodeSelector: selector}}
	old := startService(t, ns, cfg)
	first := old.request(t, "late/rrr111")
	first.waitEvents(t, 2) // waiting for a node
	old.stop()
	pod, err := cluster.Get(t).Client().CoreV1().Pods(ns).Get(t.Context(), buildName("late", "rrr111"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second
	poll(t, "the pod to pass the build timeout", func() bool { return time.Since(pod.CreationTimestamp.Time) > timeout+time.Second })

	cfg.BuildTimeout = timeout
	c := startService(t, ns, cfg).request(t, "late/rrr111")
	c.waitEvents(t, 2)
	if err := cluster.Get(t).AddNode(t.Context(), "late-node-"+ns, selector, nil); err != nil {
		t.Fatal(err)
	}
	if pod, err := cluster.Get(t).Client().CoreV1().Pods(ns).Get(t.Context(), buildName("late", "rrr111"), metav1.GetOptions{}); err == nil && pod.Status.Phase == corev1.PodRunning {
		finish(t, ns, pod.Name, testcluster.Succeeded())
	}
	got := c.wait(t)
	if last := got[len(got)-1]; !strings.HasPrefix(last, `{"phase": "failed", "message": "Build failed: no node could run the build pod in time. Waiting for a node to run the build: 0/`) {
		t.Errorf("events:\n%s\nwant the unschedulable failure last", strings.Join(got, "\n"))
	}
}
