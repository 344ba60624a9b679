package builder_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testlog"
	"github.com/binderbuild/binderbuild/server"
)

// namedProvider is repoProvider with the provider name real providers set.
type namedProvider struct{ repoProvider }

func (p namedProvider) Parse(spec string) (binderbuild.Repo, error) {
	repo, err := p.repoProvider.Parse(spec)
	repo.ProviderName = "GitHub"
	return repo, err
}

func (p namedProvider) Resolve(ctx context.Context, repo binderbuild.Repo) (binderbuild.Resolved, error) {
	return p.repoProvider.Resolve(ctx, repo)
}

// imageSet answers Exists from a fixed set of images.
type imageSet map[string]bool

func (s imageSet) Exists(_ context.Context, image string) (bool, error) { return s[image], nil }

// lineSink keeps the event lines emitted.
type lineSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *lineSink) Send(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, string(line))
}

func (s *lineSink) Close(context.Context) error { return nil }

func (s *lineSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// observed is a service on the test cluster whose builds are counted in a
// fresh registry and whose events are captured.
type observed struct {
	*service
	reg    *prometheus.Registry
	sink   *lineSink
	logs   *testlog.Buffer
	shared *builder.Shared
}

func startObserved(t *testing.T, ns string, images server.ImageChecker) *observed {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	bm := builder.NewMetrics(reg, builder.MetricsConfig{RepoLabel: true})
	sink := &lineSink{}
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	em, err := events.NewEmitter(sink, nil, events.NewMetrics(reg), log)
	if err != nil {
		t.Fatal(err)
	}
	rc := cluster.Get(t).RestConfig()
	rc.Wrap(bm.InstrumentTransport)
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	kube, err := builder.NewKube(client, builder.KubeConfig{PodConfig: builder.PodConfig{
		BuildNamespace: ns, BuildImage: "quay.io/jupyterhub/repo2docker:2024.07.0", DockerHost: "/var/run/docker.sock",
		BuildNodeSelector: map[string]string{dockerAPILabel: "true"}, BuildTimeout: time.Hour,
	}}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.Start(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	shared := builder.NewShared(ctx, kube, 0, builder.WithMetrics(bm), builder.WithEvents(em), builder.WithLogger(log))
	srv := server.New(ctx, server.Config{APIOnly: true, ImagePrefix: "registry.test/binder/"}, server.Deps{
		Providers: []server.Provider{namedProvider{}},
		Images:    images,
		Builder:   shared,
		Metrics:   server.NewMetrics(reg, server.MetricsConfig{}),
		Events:    em,
		Log:       log,
	})
	ts := httptest.NewServer(srv)
	svc := &service{url: ts.URL, ns: ns, kube: kube, stop: func() { ts.CloseClientConnections(); ts.Close(); cancel() }}
	t.Cleanup(svc.stop)
	return &observed{service: svc, reg: reg, sink: sink, logs: logs, shared: shared}
}

// value returns the value of the series name{labels} (the sample count of
// a histogram), 0 when it does not exist.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(labels); i += 2 {
		if have[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

// eventsOf returns the captured events of schema, each validated against
// its embedded schema.
func (o *observed) eventsOf(t *testing.T, schema string) []string {
	t.Helper()
	schemas, err := events.LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range o.sink.all() {
		if err := schemas.ValidateLine([]byte(l)); err != nil {
			t.Errorf("emitted event does not match its schema: %v", err)
		}
		if strings.Contains(l, `"schema": "`+schema+`"`) {
			out = append(out, l)
		}
	}
	return out
}

// waitForgotten waits until the builds ended and were forgotten, and checks
// that no launch event was emitted: build-only requests launch nothing.
func (o *observed) waitForgotten(t *testing.T) {
	t.Helper()
	poll(t, "build forgotten", func() bool { return o.shared.Running() == 0 })
	if launches := o.eventsOf(t, events.LaunchSchema); len(launches) != 0 {
		t.Errorf("launch events %q for build-only requests, want none", launches)
	}
}

// TestMetricsExactlyOnce runs real builds to each end and checks that each
// is counted once, whatever the number of clients, with its cause; and that
// every event emitted matches its schema.
func TestMetricsExactlyOnce(t *testing.T) {
	tests := []struct {
		name    string
		outcome testcluster.Outcome
		lines   []string
		status  string
		cause   events.Cause
	}{
		{"success", testcluster.Succeeded(), r2dLines, "success", events.CauseSuccess},
		{"exit code without failed line", testcluster.Failed(2), r2dLines[:3], "failure", events.CauseFailed},
		{"oom", testcluster.OOMKilled(), r2dLines[:3], "failure", events.CauseOOM},
		{"deadline", testcluster.DeadlineExceeded(), r2dLines[:3], "failure", events.CauseDeadline},
		{"evicted", testcluster.Evicted(), r2dLines[:3], "failure", events.CauseEvicted},
		{"repo2docker failed line", testcluster.Succeeded(),
			append(append([]string{}, r2dLines[:3]...), `{"message": "Error during build: boom\n", "phase": "failed"}`), "failure", events.CauseFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := cluster.Get(t).NewNamespace(t.Context(), t)
			svc := startObserved(t, ns, imageSet{})
			first := svc.request(t, "counted/abc123")
			pod := waitPod(t, ns, "counted", "abc123", corev1.PodRunning)
			second := svc.request(t, "counted/abc123") // joins the running build
			second.waitEvents(t, 1)
			if got := value(t, svc.reg, "binderhub_inprogress_builds"); got != 1 {
				t.Errorf("binderhub_inprogress_builds = %v while building with 2 clients, want 1", got)
			}
			if got := value(t, svc.reg, "binderbuild_sse_clients"); got != 2 {
				t.Errorf("binderbuild_sse_clients = %v, want 2", got)
			}
			writeLog(t, ns, pod.Name, tc.lines...)
			finish(t, ns, pod.Name, tc.outcome)
			first.wait(t)
			second.wait(t)
			svc.waitForgotten(t)
			poll(t, "no open streams", func() bool { return value(t, svc.reg, "binderbuild_sse_clients") == 0 })

			repo := "https://github.com/test/counted"
			checks := []struct {
				name   string
				labels []string
				want   float64
			}{
				{"binderhub_build_count_total", []string{"status", tc.status, "provider", "GitHub", "repo", repo}, 1},
				{"binderhub_build_count_total", nil, 1}, // no other series
				{"binderhub_build_time_seconds", []string{"status", tc.status}, 1},
				{"binderbuild_builds_total", []string{"cause", string(tc.cause)}, 1},
				{"binderhub_inprogress_builds", nil, 0},
				{"binderbuild_build_requests_total", []string{"outcome", "build"}, 1},
				{"binderbuild_build_requests_total", []string{"outcome", "joined"}, 1},
				{"binderbuild_build_requests_total", []string{"outcome", "cache_hit"}, 0},
				{"binderbuild_build_queue_wait_seconds", nil, 1},
				{"binderbuild_build_queue_length", nil, 0},
				{"binderbuild_build_phase_seconds", []string{"phase", "waiting"}, 1},
				{"binderbuild_build_phase_seconds", []string{"phase", "fetching"}, 1},
				{"binderbuild_build_phase_seconds", []string{"phase", "building"}, 1},
			}
			if tc.cause == events.CauseSuccess {
				checks = append(checks, struct {
					name   string
					labels []string
					want   float64
				}{"binderbuild_build_phase_seconds", []string{"phase", "pushing"}, 1})
			}
			for _, c := range checks {
				if got := value(t, svc.reg, c.name, c.labels...); got != c.want {
					t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			var total float64
			for _, cause := range []string{"success", "failed", "oom", "deadline", "evicted", "unschedulable", "cancelled"} {
				total += value(t, svc.reg, "binderbuild_builds_total", "cause", cause)
			}
			if total != 1 {
				t.Errorf("binderbuild_builds_total sums to %v over causes, want 1", total)
			}
			for _, verb := range []string{"create", "watch", "get", "delete"} {
				if value(t, svc.reg, "binderbuild_kubernetes_requests_total", "verb", verb, "outcome", "ok") < 1 {
					t.Errorf("no Kubernetes %s request counted", verb)
				}
			}

			builds := svc.eventsOf(t, events.BuildSchema)
			steps := []string{`"event": "queued"`, `"event": "started"`}
			if tc.cause == events.CauseSuccess {
				steps = append(steps, `"event": "succeeded"`)
			} else {
				steps = append(steps, `"event": "failed"`)
			}
			if len(builds) != len(steps) {
				t.Fatalf("build events:\n%s\nwant %d", strings.Join(builds, "\n"), len(steps))
			}
			for i, step := range steps {
				if !strings.Contains(builds[i], step) {
					t.Errorf("build event %d = %s, want %s", i, builds[i], step)
				}
			}
			if !strings.Contains(builds[2], `"cause": "`+string(tc.cause)+`"`) || !strings.Contains(builds[2], `"cache_hit": false`) {
				t.Errorf("last build event %s, want cause %s and no cache hit", builds[2], tc.cause)
			}
			logs := svc.logs.String()
			for _, msg := range []string{`"msg":"build queued"`, `"msg":"build started"`, `"msg":"build phase"`, `"msg":"build ended"`, `"cause":"` + string(tc.cause) + `"`} {
				if !strings.Contains(logs, msg) {
					t.Errorf("logs lack %s:\n%s", msg, logs)
				}
			}
		})
	}
}

// TestMetricsCacheHit: an image already in the registry is a cache hit,
// not a build.
func TestMetricsCacheHit(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svc := startObserved(t, ns, imageSet{imageName("cached", "def456"): true})
	svc.request(t, "cached/def456").wait(t)
	svc.waitForgotten(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"binderhub_build_count_total", nil, 0},
		{"binderbuild_builds_total", []string{"cause", "success"}, 0},
		{"binderhub_build_time_seconds", []string{"status", "success"}, 0},
		{"binderbuild_build_requests_total", []string{"outcome", "cache_hit"}, 1},
		{"binderbuild_build_requests_total", []string{"outcome", "build"}, 0},
		{"binderhub_inprogress_builds", nil, 0},
	} {
		if got := value(t, svc.reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%q = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	builds := svc.eventsOf(t, events.BuildSchema)
	if len(builds) != 1 || !strings.Contains(builds[0], `"event": "succeeded"`) || !strings.Contains(builds[0], `"cache_hit": true`) {
		t.Errorf("build events %q, want one succeeded cache hit", builds)
	}
}

// TestSlowEventReceiverDoesNotDelayBuilds: with the HTTP sink's receiver
// stuck in its first request, builds still run to their end: Emit only
// queues.
func TestSlowEventReceiverDoesNotDelayBuilds(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		once.Do(func() { close(entered) })
		<-release
	}))
	defer receiver.Close()
	sink := events.NewHTTPSink(events.SinkConfig{EventsUrl: receiver.URL, EventsBufferSize: 4}, receiver.Client(), nil, nil)
	em, err := events.NewEmitter(sink, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	exec := execFunc(func(context.Context, binderbuild.BuildRequest, *events.Log) error { return nil })
	shared := builder.NewShared(t.Context(), exec, 0, builder.WithEvents(em))
	for i := range 20 {
		log, err := shared.Build(t.Context(), binderbuild.BuildRequest{Name: "build-" + strings.Repeat("x", i), ProviderName: "GitHub"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-entered // the receiver now holds the sink's first POST
		}
		waitFinished(t, log) // while the receiver still holds the first POST
	}
	shared.Wait()
	close(release)
	if err := em.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

type execFunc func(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error

func (f execFunc) Run(ctx context.Context, req binderbuild.BuildRequest, log *events.Log) error {
	return f(ctx, req, log)
}

func waitFinished(t *testing.T, log *events.Log) {
	t.Helper()
	for {
		_, _, done, changed := log.Read(log.Len())
		if done {
			return
		}
		select {
		case <-changed:
		case <-time.After(time.Minute):
			t.Fatal("build did not finish")
		}
	}
}
