package builder

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
	"github.com/binderbuild/binderbuild/internal/metricstest"
)

func TestMetricsTable(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg, MetricsConfig{RepoLabel: true, Providers: []string{"GitHub"}})
	rt := m.InstrumentTransport(roundTripFunc(func(*http.Request) (*http.Response, error) { return &http.Response{StatusCode: 200}, nil }))
	_, _ = rt.RoundTrip(httptest.NewRequest(http.MethodGet, "https://k8s/api/v1/namespaces/ns/pods", nil))
	metricstest.Check(t, reg, []metricstest.Family{
		{Name: "binderhub_build_time_seconds", Type: dto.MetricType_HISTOGRAM, Help: "Histogram of build times", Labels: []string{"status"}, Buckets: []float64{60, 120, 300, 600, 1800, 3600, 7200}},
		{Name: "binderhub_build_count_total", Type: dto.MetricType_COUNTER, Help: "Counter of builds by repo", Labels: []string{"provider", "repo", "status"}},
		{Name: "binderhub_inprogress_builds", Type: dto.MetricType_GAUGE, Help: "Builds currently in progress"},
		{Name: "binderbuild_builds_total", Type: dto.MetricType_COUNTER, Labels: []string{"cause"}},
		{Name: "binderbuild_build_phase_seconds", Type: dto.MetricType_HISTOGRAM, Labels: []string{"phase"}, Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200}},
		{Name: "binderbuild_build_queue_length", Type: dto.MetricType_GAUGE},
		{Name: "binderbuild_build_queue_wait_seconds", Type: dto.MetricType_HISTOGRAM, Buckets: []float64{0.1, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}},
		{Name: "binderbuild_kubernetes_requests_total", Type: dto.MetricType_COUNTER, Labels: []string{"outcome", "verb"}},
	})
	// Bounded labels: every cause and phase exists from the start, and
	// nothing else.
	if n := testutil.CollectAndCount(m.ended); n != 7 {
		t.Errorf("binderbuild_builds_total has %d series, want the 7 causes", n)
	}
	if n := testutil.CollectAndCount(m.phase); n != 4 {
		t.Errorf("binderbuild_build_phase_seconds has %d series, want the 4 phases", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRepoLabelSwitch(t *testing.T) {
	for _, on := range []bool{true, false} {
		m := NewMetrics(prometheus.NewPedanticRegistry(), MetricsConfig{RepoLabel: on})
		m.buildStarted()
		m.buildEnded(events.CauseSuccess, "Git", "https://user:pw@example.com/r.git", 1, nil)
		want := ""
		if on {
			want = "https://redacted@example.com/r.git"
		}
		if got := testutil.ToFloat64(m.buildCount.WithLabelValues("success", "Git", want)); got != 1 {
			t.Errorf("RepoLabel %v: build count for repo %q = %v, want 1", on, want, got)
		}
	}
}

func TestKubeVerb(t *testing.T) {
	tests := []struct{ method, url, want string }{
		{"GET", "/api/v1/namespaces/ns/pods", "list"},
		{"GET", "/api/v1/namespaces/ns/pods?watch=true&resourceVersion=1", "watch"},
		{"GET", "/api/v1/namespaces/ns/pods/p", "get"},
		{"GET", "/api/v1/namespaces/ns/pods/p/log?follow=true", "get"},
		{"GET", "/api/v1/namespaces", "list"},
		{"GET", "/api/v1/namespaces/ns", "get"},
		{"GET", "/apis/apps/v1/namespaces/ns/deployments", "list"},
		{"POST", "/api/v1/namespaces/ns/pods", "create"},
		{"DELETE", "/api/v1/namespaces/ns/pods/p", "delete"},
		{"DELETE", "/api/v1/namespaces/ns/pods", "deletecollection"},
		{"PATCH", "/api/v1/namespaces/ns/pods/p", "patch"},
		{"PUT", "/api/v1/namespaces/ns/pods/p/status", "update"},
		{"OPTIONS", "/api", "other"},
		{"GET", "/version", "get"},
	}
	for _, tc := range tests {
		if got := kubeVerb(httptest.NewRequest(tc.method, "https://k8s"+tc.url, nil)); got != tc.want {
			t.Errorf("kubeVerb(%s %s) = %q, want %q", tc.method, tc.url, got, tc.want)
		}
	}
}

// TestSharedCountsEachBuildOnce: builds are counted when they end, never
// per client, and a build the service stops following (shutdown) is not
// counted: whoever follows it next counts it.
func TestSharedCountsEachBuildOnce(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg, MetricsConfig{RepoLabel: true})
	release := make(chan error)
	exec := funcExec(func(ctx context.Context, _ binderbuild.BuildRequest, log *events.Log) error {
		log.Append(events.Message("fetching", "x\n"))
		select {
		case err := <-release:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	ctx, stop := context.WithCancel(t.Context())
	s := NewShared(ctx, exec, 0, WithMetrics(m), WithLogger(slog.New(slog.DiscardHandler)))
	req := binderbuild.BuildRequest{Name: "a", ProviderName: "GitHub", RepoURL: "https://github.com/o/a"}
	logs := make([]*events.Log, 3)
	joined := make([]bool, 3)
	for i := range logs {
		logs[i], joined[i], _ = s.Join(t.Context(), req)
	}
	if joined[0] || !joined[1] || !joined[2] {
		t.Errorf("joined = %v, want [false true true]", joined)
	}
	if got := testutil.ToFloat64(m.inProgress); got != 1 {
		t.Errorf("in progress = %v with 3 clients, want 1", got)
	}
	endBuild(t, release, events.Fail(events.CauseOOM, "oom\n"))
	waitDone(t, logs[0])
	if got := testutil.ToFloat64(m.buildCount.WithLabelValues("failure", "GitHub", "https://github.com/o/a")); got != 1 {
		t.Errorf("failures = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.ended.WithLabelValues("oom")); got != 1 {
		t.Errorf("oom = %v, want 1", got)
	}

	// Another error than a Failure still ends the build, as failed.
	log, _, _ := s.Join(t.Context(), req)
	endBuild(t, release, errors.New("watch broke"))
	waitDone(t, log)
	if got := testutil.ToFloat64(m.ended.WithLabelValues("failed")); got != 1 {
		t.Errorf("failed = %v, want 1", got)
	}

	// Shutdown: not counted, no longer in progress.
	log, _, _ = s.Join(t.Context(), req)
	stop()
	waitDone(t, log)
	s.Wait()
	if got := testutil.CollectAndCount(m.buildCount); got != 1 {
		t.Errorf("%d build count series after shutdown, want 1", got)
	}
	var total float64
	for _, c := range []string{"success", "failed", "oom", "deadline", "evicted", "unschedulable", "cancelled"} {
		total += testutil.ToFloat64(m.ended.WithLabelValues(c))
	}
	if total != 2 || testutil.ToFloat64(m.inProgress) != 0 {
		t.Errorf("ended %v builds, in progress %v; want 2 and 0", total, testutil.ToFloat64(m.inProgress))
	}
}

// endBuild hands err to the build waiting on release, failing the test
// (not hanging it) when no build runs.
func endBuild(t *testing.T, release chan<- error, err error) {
	t.Helper()
	select {
	case release <- err:
	case <-time.After(10 * time.Second):
		t.Fatal("no build is running to end")
	}
}

// TestTrackerPhases: phases are timed from the events of the build's log;
// a phase that recurs adds up, and each is observed once per build.
func TestTrackerPhases(t *testing.T) {
	base := time.Unix(1000, 0)
	var at time.Duration
	now := func() time.Time { return base.Add(at) }
	m := NewMetrics(prometheus.NewPedanticRegistry(), MetricsConfig{})
	rec := &recordEmitter{}
	tr := newTracker(binderbuild.BuildRequest{Name: "b", ProviderName: "GitHub"}, m, rec, slog.New(slog.DiscardHandler), now)
	for _, step := range []struct {
		at    time.Duration
		event events.Event
	}{
		{2 * time.Second, events.Message("fetching", "x")},
		{3 * time.Second, events.Message("building", "x")},
		{4 * time.Second, events.Message("unknown", "x")},
		{5 * time.Second, events.FromLogLine([]byte(`{"message": "no phase"}`))},
		{10 * time.Second, events.Message("waiting", "x")},
		{11 * time.Second, events.Message("Building", "x")}, // not lower-cased: not a phase
		{11 * time.Second, events.FromLogLine([]byte(`{"phase": "Building"}`))},
		{20 * time.Second, events.Message("pushing", "x")},
	} {
		at = step.at
		tr.saw(step.event)
	}
	at = 25 * time.Second
	tr.end(nil)
	want := map[string]time.Duration{"waiting": 3 * time.Second, "fetching": time.Second, "building": 16 * time.Second, "pushing": 5 * time.Second}
	for phase, d := range want {
		var out dto.Metric
		if err := m.phase.WithLabelValues(phase).(prometheus.Histogram).Write(&out); err != nil {
			t.Fatal(err)
		}
		if out.GetHistogram().GetSampleCount() != 1 || out.GetHistogram().GetSampleSum() != d.Seconds() {
			t.Errorf("phase %s: %d samples summing to %v, want 1 of %v", phase, out.GetHistogram().GetSampleCount(), out.GetHistogram().GetSampleSum(), d.Seconds())
		}
	}
	if len(rec.recs) != 2 {
		t.Fatalf("%d events, want queued and succeeded", len(rec.recs))
	}
	end := rec.recs[1].(events.Build)
	if end.Step != events.BuildSucceeded || end.Duration != 25*time.Second || !maps.Equal(end.PhaseTimes, want) {
		t.Errorf("end event = %+v, want succeeded after 25s with phases %v", end, want)
	}
}

type recordEmitter struct{ recs []events.Record }

func (r *recordEmitter) Emit(rec events.Record) { r.recs = append(r.recs, rec) }
