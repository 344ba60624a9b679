package repoproviders

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Upstream request outcomes, the values of the outcome label of
// binderbuild_upstream_requests_total.
const (
	outcomeOK          = "ok"
	outcomeNotFound    = "not_found"
	outcomeError       = "error"
	outcomeRateLimited = "rate_limited"
	outcomeNotModified = "not_modified"
	// outcomeCached is only used by binderbuild_ref_resolution_seconds.
	outcomeCached = "cached"
)

// Values of the upstream label of binderbuild_upstream_requests_total.
const (
	upstreamGitHub = "github"
	upstreamGitLab = "gitlab"
	upstreamGit    = "git"
	// The archives and the DOI resolver (doi.org).
	upstreamDOI        = "doi"
	upstreamZenodo     = "zenodo"
	upstreamFigshare   = "figshare"
	upstreamHydroShare = "hydroshare"
	upstreamDataverse  = "dataverse"
	upstreamCKAN       = "ckan"
	upstreamSWH        = "swh"
)

// Metrics holds the Prometheus collectors of the repo providers. Build it once
// with NewMetrics and hand it to every provider and to Cached. A nil *Metrics
// is valid and records nothing, so providers also work without metrics.
type Metrics struct {
	// githubRemaining mirrors the last x-ratelimit-remaining GitHub sent.
	githubRemaining prometheus.Gauge
	// upstream counts requests to GitHub, GitLab, git servers, archives
	// and the DOI resolver.
	upstream *prometheus.CounterVec
	// resolution times Resolve calls seen by CachedProvider.
	resolution *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them on reg:
//
//   - binderhub_github_rate_limit_remaining (gauge, "GitHub rate limit remaining"),
//     the name and help upstream BinderHub uses;
//   - binderbuild_upstream_requests_total{upstream="github|gitlab|git|doi|zenodo|figshare|hydroshare|dataverse|ckan|swh",
//     outcome="ok|not_found|error|rate_limited|not_modified"} (counter);
//   - binderbuild_ref_resolution_seconds{provider, outcome="ok|not_found|error|cached"}
//     (histogram), observed by CachedProvider for every Resolve call.
//
// A nil reg creates unregistered collectors. Registering twice on the same
// registry panics, as with every promauto collector.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		githubRemaining: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderhub_github_rate_limit_remaining",
			Help: "GitHub rate limit remaining",
		}),
		upstream: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderbuild_upstream_requests_total",
			Help: "Requests to repository hosts (GitHub and GitLab APIs, git servers, archives, doi.org) by outcome.",
		}, []string{"upstream", "outcome"}),
		resolution: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "binderbuild_ref_resolution_seconds",
			Help:    "Time to resolve a ref to a commit, by provider and outcome.",
			Buckets: []float64{0.0005, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"provider", "outcome"}),
	}
}

func (m *Metrics) upstreamRequest(upstream, outcome string) {
	if m == nil {
		return
	}
	m.upstream.WithLabelValues(upstream, outcome).Inc()
}

func (m *Metrics) setGitHubRemaining(remaining int) {
	if m == nil {
		return
	}
	m.githubRemaining.Set(float64(remaining))
}

func (m *Metrics) observeResolution(provider, outcome string, d time.Duration) {
	m.resolutions(provider, outcome).Observe(d.Seconds())
}

// resolutions returns the observer of one provider's resolutions with one
// outcome: bound once, it spares a warm request the label lookup.
func (m *Metrics) resolutions(provider, outcome string) prometheus.Observer {
	if m == nil {
		return noObserver{}
	}
	return m.resolution.WithLabelValues(provider, outcome)
}

type noObserver struct{}

func (noObserver) Observe(float64) {}
