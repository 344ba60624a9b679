package registry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// checkOutcome is the "outcome" label of binderbuild_registry_check_seconds.
type checkOutcome int

// Outcomes of Checker.Exists.
const (
	checkFound checkOutcome = iota
	checkNotFound
	checkError
	checkCached
	numCheckOutcomes
)

// String returns the label value.
func (o checkOutcome) String() string {
	switch o {
	case checkFound:
		return "found"
	case checkNotFound:
		return "not_found"
	case checkError:
		return "error"
	default:
		return "cached"
	}
}

// requestOutcome is the "outcome" label of binderbuild_registry_requests_total.
type requestOutcome int

// Outcomes of one registry request.
const (
	requestOK requestOutcome = iota
	requestNotFound
	requestError
	requestUnauthorized
	numRequestOutcomes
)

// String returns the label value.
func (o requestOutcome) String() string {
	switch o {
	case requestOK:
		return "ok"
	case requestNotFound:
		return "not_found"
	case requestError:
		return "error"
	default:
		return "unauthorized"
	}
}

// Metrics are the Prometheus series of the registry checker. A nil
// *Metrics records nothing.
type Metrics struct {
	// check holds binderbuild_registry_check_seconds by outcome, resolved
	// once so that the warm path does no label lookup.
	check [numCheckOutcomes]prometheus.Observer
	// requests holds binderbuild_registry_requests_total by outcome.
	requests [numRequestOutcomes]prometheus.Counter
}

// NewMetrics creates the checker's series and registers them on reg:
//
//   - binderbuild_registry_check_seconds{outcome="found|not_found|error|cached"},
//     a histogram of Checker.Exists latency (cached = answered from the
//     positive or negative cache);
//   - binderbuild_registry_requests_total{outcome="ok|not_found|error|unauthorized"},
//     a counter of registry requests (one per attempt, health probes included).
//
// The request counter is registry-specific because
// binderbuild_upstream_requests_total belongs to package repoproviders and one
// name cannot be registered twice on a registry. A nil reg creates
// unregistered series. NewMetrics panics if the names are already registered
// on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	check := f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "binderbuild_registry_check_seconds",
		Help:    "Time to answer whether an image exists in the registry, by outcome.",
		Buckets: []float64{0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"outcome"})
	requests := f.NewCounterVec(prometheus.CounterOpts{
		Name: "binderbuild_registry_requests_total",
		Help: "Requests to the image registry, by outcome.",
	}, []string{"outcome"})
	m := &Metrics{}
	for o := range numCheckOutcomes {
		m.check[o] = check.WithLabelValues(o.String())
	}
	for o := range numRequestOutcomes {
		m.requests[o] = requests.WithLabelValues(o.String())
	}
	return m
}

// observeCheck records one Exists call that took seconds.
func (m *Metrics) observeCheck(outcome checkOutcome, seconds float64) {
	if m == nil {
		return
	}
	m.check[outcome].Observe(seconds)
}

// countRequest records one registry request.
func (m *Metrics) countRequest(outcome requestOutcome) {
	if m == nil {
		return
	}
	m.requests[outcome].Inc()
}
