package server

import (
	"context"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// Values of the outcome label of binderbuild_build_requests_total.
const (
	outcomeCacheHit = "cache_hit"
	outcomeBuild    = "build"
	outcomeJoined   = "joined"
)

// MetricsConfig configures the server's metrics.
type MetricsConfig struct {
	// Providers are provider names ("GitHub", "Git", "GitLab") whose
	// binderhub_launch_count_total series are created at zero (repo "").
	Providers []string
	// RepoLabel puts the repository URL in the repo label of
	// binderhub_launch_count_total, as upstream; false leaves it empty.
	RepoLabel bool
}

// Metrics are the Prometheus series of /build requests. Builds themselves
// are counted by package builder, once per build. A nil *Metrics records
// nothing.
type Metrics struct {
	launchTime         *prometheus.HistogramVec
	launchCount        *prometheus.CounterVec
	inProgressLaunches prometheus.Gauge
	withRepo           bool // cfg.RepoLabel
	// requests is binderbuild_build_requests_total by outcome.
	requests map[string]prometheus.Counter
	// open counts the event streams served by a handler; parked, when
	// set, counts those handed to a fan-out. binderbuild_sse_clients is
	// their sum.
	open   atomic.Int64
	parked atomic.Pointer[func() int64]
}

// NewMetrics creates the series and registers them on reg:
//
//   - binderhub_launch_time_seconds{status, retries} (histogram, buckets 2 …
//     600 s), binderhub_launch_count_total{status, provider, repo} (counter)
//     and binderhub_inprogress_launches (gauge), with upstream's names, help
//     and buckets so that BinderHub dashboards find them, observed by
//     launches (launch.go);
//   - binderbuild_build_requests_total{outcome="cache_hit|build|joined"}
//     (counter): /build requests that reached the image: answered from the
//     registry, starting a build, or joining one already running;
//   - binderbuild_sse_clients (gauge): open /build event streams, those
//     parked on a build's fan-out included (see Server).
//
// Give a Metrics to one Server: New attaches it to that server's parked
// streams. A nil reg creates unregistered series.
func NewMetrics(reg prometheus.Registerer, cfg MetricsConfig) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		launchTime: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "binderhub_launch_time_seconds",
			Help:    "Histogram of launch times",
			Buckets: []float64{2, 5, 10, 20, 30, 60, 120, 300, 600},
		}, []string{"status", "retries"}),
		launchCount: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderhub_launch_count_total",
			Help: "Counter of launches by repo",
		}, []string{"status", "provider", "repo"}),
		inProgressLaunches: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderhub_inprogress_launches",
			Help: "Launches currently in progress",
		}),
		requests: make(map[string]prometheus.Counter),
		withRepo: cfg.RepoLabel,
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "binderbuild_sse_clients",
		Help: "Open /build event streams, parked ones included.",
	}, m.streams)
	requests := f.NewCounterVec(prometheus.CounterOpts{
		Name: "binderbuild_build_requests_total",
		Help: "/build requests that reached the image, by outcome: cache_hit (found in the registry), build (started a build), joined (followed a build already running).",
	}, []string{"outcome"})
	for _, o := range []string{outcomeCacheHit, outcomeBuild, outcomeJoined} {
		m.requests[o] = requests.WithLabelValues(o)
	}
	m.launchTime.WithLabelValues("success", "0")
	m.launchTime.WithLabelValues("failure", "-1")
	m.launchTime.WithLabelValues("retry", "-1")
	for _, p := range cfg.Providers {
		m.launchCount.WithLabelValues("success", p, "")
		m.launchCount.WithLabelValues("failure", p, "")
	}
	return m
}

func (m *Metrics) request(outcome string) {
	if m != nil {
		m.requests[outcome].Inc()
	}
}

// streamOpened counts an open event stream; call the result when its
// handler returns (a parked stream is counted by the fan-out from then on).
func (m *Metrics) streamOpened() (closed func()) {
	if m == nil {
		return func() {}
	}
	m.open.Add(1)
	return func() { m.open.Add(-1) }
}

// countParked adds the streams parked tells to binderbuild_sse_clients.
func (m *Metrics) countParked(parked func() int64) {
	if m != nil {
		m.parked.Store(&parked)
	}
}

func (m *Metrics) streams() float64 {
	n := m.open.Load()
	if p := m.parked.Load(); p != nil {
		n += (*p)()
	}
	return float64(n)
}

// EventEmitter receives launch and build events; *events.Emitter is one.
// Its methods must not block.
type EventEmitter interface {
	Emit(events.Record)
	// Prepare encodes a record that EmitPrepared emits, again and again.
	Prepare(events.Record) events.Prepared
	EmitPrepared(events.Prepared)
}

// startBuild starts or joins the build of req and counts the request.
func (s *Server) startBuild(ctx context.Context, req binderbuild.BuildRequest) (*events.Log, error) {
	log, joined, err := s.deps.Builder.Join(ctx, req)
	if err == nil {
		s.deps.Metrics.request(map[bool]string{true: outcomeJoined, false: outcomeBuild}[joined])
	}
	return log, err
}

// launchInfo is what the launch event of one /build request reports,
// filled in as the request goes.
type launchInfo struct {
	provider, spec, ref string
	buildToken          bool
	// launch marks a request that launches a server: its launch event is
	// emitted by launchAfter, on success only.
	launch bool
}
