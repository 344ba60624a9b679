package builder

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/binderbuild/binderbuild/events"
)

// Upstream BinderHub's build status label values.
const (
	statusSuccess = "success"
	statusFailure = "failure"
)

// MetricsConfig configures the build metrics.
type MetricsConfig struct {
	// RepoLabel keeps the repository URL in the repo label of
	// binderhub_build_count_total, as upstream; false replaces it by "" so
	// that the label cardinality stays bounded.
	RepoLabel bool
	// Providers are provider names ("GitHub", "Git", "GitLab") whose
	// binderhub_build_count_total series are created at zero (with repo
	// ""), so that the series is scraped before the first build.
	Providers []string
}

// Metrics are the Prometheus series of builds, observed by Shared (once per
// build, whatever the number of clients following it) and by the Kubernetes
// executor. A nil *Metrics records nothing.
type Metrics struct {
	repoLabel bool

	// buildTime is binderhub_build_time_seconds by status.
	buildTime map[string]prometheus.Observer
	// buildCount is binderhub_build_count_total{status, provider, repo}.
	buildCount *prometheus.CounterVec
	// inProgress is binderhub_inprogress_builds: builds, not watchers.
	inProgress prometheus.Gauge
	// ended is binderbuild_builds_total by cause.
	ended *prometheus.CounterVec
	// phase is binderbuild_build_phase_seconds by phase.
	phase *prometheus.HistogramVec
	// queueLength and queueWait describe the executor's admission queue.
	queueLength prometheus.Gauge
	queueWait   prometheus.Histogram
	// kube counts Kubernetes API requests by verb and outcome.
	kube *prometheus.CounterVec
}

// NewMetrics creates the build series and registers them on reg:
//
//   - binderhub_build_time_seconds{status="success|failure"} (histogram,
//     buckets 60 … 7200 s as upstream): from the request that started the
//     build to its end;
//   - binderhub_build_count_total{status, provider, repo} (counter, "Counter
//     of builds by repo"): one per build, cache hits and joined requests
//     excluded; repo is the repository URL, credentials removed, or "" when
//     cfg.RepoLabel is false;
//   - binderhub_inprogress_builds (gauge): builds running, not the clients
//     following them (upstream counts watchers);
//   - binderbuild_builds_total{cause="success|failed|oom|deadline|evicted|unschedulable|cancelled"}
//     (counter): one per build by terminal cause;
//   - binderbuild_build_phase_seconds{phase="waiting|fetching|building|pushing"}
//     (histogram): per build, the time spent in each phase it went through;
//   - binderbuild_build_queue_length (gauge) and
//     binderbuild_build_queue_wait_seconds (histogram): builds waiting for
//     a build slot and how long they waited before admission;
//   - binderbuild_kubernetes_requests_total{verb, outcome="ok|not_found|conflict|error"}
//     (counter): requests made through InstrumentTransport.
//
// A nil reg creates unregistered series.
func NewMetrics(reg prometheus.Registerer, cfg MetricsConfig) *Metrics {
	f := promauto.With(reg)
	buildTime := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "binderhub_build_time_seconds",
		Help:    "Histogram of build times",
		Buckets: []float64{60, 120, 300, 600, 1800, 3600, 7200},
	}, []string{"status"})
	m := &Metrics{
		repoLabel: cfg.RepoLabel,
		buildTime: map[string]prometheus.Observer{
			statusSuccess: buildTime.WithLabelValues(statusSuccess),
			statusFailure: buildTime.WithLabelValues(statusFailure),
		},
		buildCount: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderhub_build_count_total",
			Help: "Counter of builds by repo",
		}, []string{"status", "provider", "repo"}),
		inProgress: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderhub_inprogress_builds",
			Help: "Builds currently in progress",
		}),
		ended: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderbuild_builds_total",
			Help: "Builds by terminal cause: success, failed, oom, deadline, evicted, unschedulable, cancelled.",
		}, []string{"cause"}),
		phase: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "binderbuild_build_phase_seconds",
			Help:    "Time a build spent in each phase (waiting, fetching, building, pushing).",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}, []string{"phase"}),
		queueLength: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderbuild_build_queue_length",
			Help: "Builds waiting for a build slot.",
		}),
		queueWait: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "binderbuild_build_queue_wait_seconds",
			Help:    "Time builds waited for a build slot before they were admitted.",
			Buckets: []float64{0.1, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		kube: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderbuild_kubernetes_requests_total",
			Help: "Requests to the Kubernetes API server by verb and outcome (ok, not_found, conflict, error).",
		}, []string{"verb", "outcome"}),
	}
	for _, c := range []events.Cause{events.CauseSuccess, events.CauseFailed, events.CauseOOM, events.CauseDeadline,
		events.CauseEvicted, events.CauseUnschedulable, events.CauseCancelled} {
		m.ended.WithLabelValues(string(c))
	}
	for _, p := range events.Phases {
		m.phase.WithLabelValues(p)
	}
	for _, p := range cfg.Providers {
		m.buildCount.WithLabelValues(statusSuccess, p, "")
		m.buildCount.WithLabelValues(statusFailure, p, "")
	}
	return m
}

// repo is the repo label value of repoURL.
func (m *Metrics) repo(repoURL string) string {
	if !m.repoLabel {
		return ""
	}
	return events.Redact(repoURL)
}

func (m *Metrics) buildStarted() {
	if m != nil {
		m.inProgress.Inc()
	}
}

// buildEnded counts one build that ended with cause after seconds.
func (m *Metrics) buildEnded(cause events.Cause, provider, repoURL string, seconds float64, phases map[string]float64) {
	if m == nil {
		return
	}
	status := statusFailure
	if cause == events.CauseSuccess {
		status = statusSuccess
	}
	m.inProgress.Dec()
	m.buildTime[status].Observe(seconds)
	m.buildCount.WithLabelValues(status, provider, m.repo(repoURL)).Inc()
	m.ended.WithLabelValues(string(cause)).Inc()
	for _, p := range events.Phases {
		if s, ok := phases[p]; ok {
			m.phase.WithLabelValues(p).Observe(s)
		}
	}
}

// buildAbandoned forgets a build this process stops following.
func (m *Metrics) buildAbandoned() {
	if m != nil {
		m.inProgress.Dec()
	}
}

func (m *Metrics) queued() {
	if m != nil {
		m.queueLength.Inc()
	}
}

func (m *Metrics) dequeued(admitted bool, waited float64) {
	if m == nil {
		return
	}
	m.queueLength.Dec()
	if admitted {
		m.queueWait.Observe(waited)
	}
}

// InstrumentTransport wraps rt so that every request is counted in
// binderbuild_kubernetes_requests_total. Use it as a client-go
// rest.Config.Wrap function. A nil *Metrics returns rt.
func (m *Metrics) InstrumentTransport(rt http.RoundTripper) http.RoundTripper {
	if m == nil {
		return rt
	}
	return kubeTransport{next: rt, m: m}
}

type kubeTransport struct {
	next http.RoundTripper
	m    *Metrics
}

func (t kubeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	outcome := "error"
	if err == nil {
		switch {
		case resp.StatusCode < 400:
			outcome = "ok"
		case resp.StatusCode == http.StatusNotFound:
			outcome = "not_found"
		case resp.StatusCode == http.StatusConflict:
			outcome = "conflict"
		}
	}
	t.m.kube.WithLabelValues(kubeVerb(r), outcome).Inc()
	return resp, err
}

// kubeVerb is the Kubernetes verb of an API request: get, list, watch,
// create, update, patch, delete, deletecollection, or other.
func kubeVerb(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if w := r.URL.Query().Get("watch"); w == "true" || w == "1" {
			return "watch"
		}
		if isCollection(r.URL.Path) {
			return "list"
		}
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if isCollection(r.URL.Path) {
			return "deletecollection"
		}
		return "delete"
	default:
		return "other"
	}
}

// isCollection reports whether an API path names a resource collection
// (/api/v1/namespaces/ns/pods) rather than an object or subresource.
func isCollection(path string) bool {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		segs = segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		segs = segs[3:]
	default:
		return false
	}
	if len(segs) > 2 && segs[0] == "namespaces" {
		segs = segs[2:]
	}
	return len(segs) == 1
}

// WrappedRoundTripper returns the wrapped transport, for client-go helpers
// that look through wrappers.
func (t kubeTransport) WrappedRoundTripper() http.RoundTripper { return t.next }
