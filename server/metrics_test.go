package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/metricstest"
	"github.com/binderbuild/binderbuild/internal/testlog"
)

// TestServerMetricsTable checks names, types, help, labels and buckets
// against upstream BinderHub's table (spec §15) and ours.
func TestServerMetricsTable(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	NewMetrics(reg, MetricsConfig{Providers: []string{"GitHub"}})
	metricstest.Check(t, reg, []metricstest.Family{
		{Name: "binderhub_launch_time_seconds", Type: dto.MetricType_HISTOGRAM, Help: "Histogram of launch times", Labels: []string{"retries", "status"}, Buckets: []float64{2, 5, 10, 20, 30, 60, 120, 300, 600}},
		{Name: "binderhub_launch_count_total", Type: dto.MetricType_COUNTER, Help: "Counter of launches by repo", Labels: []string{"provider", "repo", "status"}},
		{Name: "binderhub_inprogress_launches", Type: dto.MetricType_GAUGE, Help: "Launches currently in progress"},
		{Name: "binderbuild_build_requests_total", Type: dto.MetricType_COUNTER, Labels: []string{"outcome"}},
		{Name: "binderbuild_sse_clients", Type: dto.MetricType_GAUGE},
	})
}

// lineSink keeps emitted event lines.
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

// of returns the lines of schema, failing t for any line that does not
// match its schema.
func (s *lineSink) of(t *testing.T, schema string) []string {
	t.Helper()
	schemas, err := events.LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if err := schemas.ValidateLine([]byte(l)); err != nil {
			t.Errorf("emitted event does not match its schema: %v", err)
		}
		if strings.Contains(l, `"schema": "`+schema+`"`) {
			out = append(out, l)
		}
	}
	return out
}

func newEventCapture(t *testing.T) (*lineSink, *events.Emitter) {
	t.Helper()
	sink := &lineSink{}
	em, err := events.NewEmitter(sink, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sink, em
}

// TestBuildOnlyEmitsNoLaunchEvent: a binderhub.jupyter.org/launch event
// means a launch, as upstream emits it only after one (launch_test.go); a
// build-only request emits none, whatever its end. A cache hit emits its
// build event.
func TestBuildOnlyEmitsNoLaunchEvent(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	tests := []struct {
		name   string
		path   string
		images ImageChecker
		exec   builder.Executor
		cache  bool
	}{
		{name: "cache hit", path: "/build/gh/org/repo/HEAD?build_only=true", images: present(image), cache: true},
		{name: "built", path: "/build/gh/org/repo/main?build_only=true", exec: &scriptExec{}},
		{name: "build failed", path: "/build/gh/org/repo/HEAD?build_only=true", exec: &scriptExec{err: events.Fail(events.CauseOOM, "oom\n")}},
		{name: "unresolvable", path: "/build/gh/org/repo/nosuchref?build_only=true"},
		{name: "launch refused", path: "/build/gh/org/repo/HEAD", images: present(image)},
		{name: "unknown provider", path: "/build/nope/org/repo/HEAD?build_only=true"},
		{name: "bad spec", path: "/build/gh/org?build_only=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink, em := newEventCapture(t)
			reg := prometheus.NewPedanticRegistry()
			m := NewMetrics(reg, MetricsConfig{})
			deps := Deps{Images: tc.images, Events: em, Metrics: m}
			var shared *builder.Shared
			if tc.exec != nil {
				shared = builder.NewShared(t.Context(), tc.exec, 0)
				deps.Builder = shared
			}
			ts := newTestServer(t, Config{APIOnly: true}, deps)
			get(t, ts.URL, tc.path, "Origin", "https://binder.example.org")
			if shared != nil {
				shared.Wait()
			}
			if got := sink.of(t, events.LaunchSchema); len(got) != 0 {
				t.Errorf("launch events %q, want none", got)
			}
			if tc.cache {
				builds := sink.of(t, events.BuildSchema)
				if len(builds) != 1 || !strings.Contains(builds[0], `"event": "succeeded"`) || !strings.Contains(builds[0], `"cache_hit": true`) {
					t.Errorf("build events %q, want one cache hit", builds)
				}
				if got := testutil.ToFloat64(m.requests[outcomeCacheHit]); got != 1 {
					t.Errorf("cache hits = %v, want 1", got)
				}
			}
		})
	}
}

// TestCacheHitsAreEncodedOnce: what a cache hit writes is encoded once
// per resolved repository and written again on each hit: every hit emits
// its build event, stamped anew, and two specs of one commit keep their
// own spec.
func TestCacheHitsAreEncodedOnce(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	sink, em := newEventCapture(t)
	ts := newTestServer(t, Config{APIOnly: true}, Deps{Images: present(image), Events: em})
	specs := []string{"org/repo/HEAD", "org/repo/main", "org/repo/HEAD"}
	for _, spec := range specs {
		_, body := get(t, ts.URL, "/build/gh/"+spec+"?build_only=true")
		want := `data: {"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n"
		if body != want {
			t.Errorf("%s: body %q, want %q", spec, body, want)
		}
	}
	builds := sink.of(t, events.BuildSchema)
	if len(builds) != len(specs) {
		t.Fatalf("build events %q, want %d", builds, len(specs))
	}
	for i, spec := range specs {
		want := `, "schema": "binderbuild.org/build", "version": 1, "event": "succeeded", "build_name": "` +
			binderbuild.BuildName("org-repo", sha) + `", "provider": "GitHub", "spec": "` + spec + `", "ref": "` + sha +
			`", "image": "` + image + `", "cache_hit": true, "cause": "success", "duration_seconds": 0}`
		if _, rest, _ := strings.Cut(builds[i], `Z"`); rest != want {
			t.Errorf("build event %d = %s, want the timestamp then %s", i, builds[i], want)
		}
	}
}

// A hit of a long spec is encoded each time, not kept: hostile specs
// cannot make the memo big.
func TestLongSpecHitsAreNotKept(t *testing.T) {
	h := newHits("registry.example.com/binder/", (*events.Emitter)(nil))
	res := binderbuild.Resolved{Repo: binderbuild.Repo{ProviderName: "GitHub", BuildSlug: "org-repo",
		Spec: "org/repo/" + strings.Repeat("x", maxHitSpec)}, ResolvedRef: sha}
	if got, want := h.get(res).image, binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha); got != want {
		t.Errorf("image %q, want %q", got, want)
	}
	res.Spec = "org/repo/HEAD"
	h.get(res)
	if n := h.memo.Len(); n != 1 {
		t.Errorf("%d hits kept, want 1: the short spec's only", n)
	}
}

// TestBuildRequestOutcomes: the first request starts the build, the next
// join it; streams are counted while open, parked or not.
func TestBuildRequestOutcomes(t *testing.T) {
	gate := make(chan struct{})
	exec := &scriptExec{gate: gate}
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg, MetricsConfig{})
	ts := newTestServer(t, Config{APIOnly: true}, Deps{Builder: builder.NewShared(t.Context(), exec, 0), Metrics: m})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true") })
	}
	waitFor(t, func() bool { return m.streams() == 3 })
	close(gate)
	wg.Wait()
	if b, j := testutil.ToFloat64(m.requests[outcomeBuild]), testutil.ToFloat64(m.requests[outcomeJoined]); b != 1 || j != 2 {
		t.Errorf("requests build %v, joined %v; want 1 and 2", b, j)
	}
	waitFor(t, func() bool { return m.streams() == 0 })
}

// TestRequestLog: one JSON line per request with method, path, status,
// duration, client IP and request id; no header, token or URL credential.
func TestRequestLog(t *testing.T) {
	t.Run("through the logger", func(t *testing.T) {
		var buf testlog.Buffer
		testRequestLog(t, &buf, Deps{Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	})
	t.Run("access log writer", func(t *testing.T) {
		var buf, other testlog.Buffer
		testRequestLog(t, &buf, Deps{Log: slog.New(slog.NewJSONHandler(&other, nil)), AccessLog: &buf})
	})
}

func testRequestLog(t *testing.T, buf *testlog.Buffer, deps Deps) {
	ts := newTestServer(t, Config{APIOnly: true}, deps)
	secrets := []string{"secret-token", "passw0rd", "query-secret", "bt-secret", "id-secret"}
	resp, _ := get(t, ts.URL, "/build/git/https%3A%2F%2Fuser%3Apassw0rd%40example.com%2Frepo.git/main?build_only=true&access_token=query-secret&build_token=bt-secret",
		"Authorization", "Bearer secret-token", "X-Request-Id", "req-42")
	if id := resp.Header.Get("X-Request-Id"); id != "req-42" {
		t.Errorf("X-Request-Id = %q, want req-42", id)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/versions", nil)
	req.Header.Set("Authorization", "token secret-token")
	req.Header.Set("X-Request-Id", "https://u:id-secret@x.example") // a client's id is redacted too
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	waitFor(t, func() bool { return strings.Count(buf.String(), `"msg":"request"`) == 2 })
	logs := buf.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
	for _, want := range []string{
		`"method":"GET","path":"/build/git/https%3A%2F%2Fredacted%40example.com%2Frepo.git/main?build_only=true&access_token=redacted&build_token=redacted","status":200,`,
		`"client_ip":"127.0.0.1","request_id":"req-42"`,
		`"path":"/versions","status":200,`,
		`"request_id":"https://redacted@x.example"`,
		`"duration_ms":`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if strings.Contains(strings.ToLower(logs), "authorization") {
		t.Errorf("logs mention the Authorization header:\n%s", logs)
	}
}
