package gc

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Run outcomes, the "outcome" label of binderbuild_gc_runs_total.
const (
	outcomeSuccess = "success"
	outcomePartial = "partial"
	outcomeError   = "error"
)

// Metrics are the Prometheus series of the collector. A nil *Metrics
// records nothing.
type Metrics struct {
	// registryBytes and registryImages describe the registry under the
	// prefix after the last successful listing, minus what that run deleted.
	registryBytes  prometheus.Gauge
	registryImages prometheus.Gauge
	// deletedImages and deletedBytes count what runs deleted.
	deletedImages prometheus.Counter
	deletedBytes  prometheus.Counter
	// failedDeletions counts deletions that failed after their retries.
	failedDeletions prometheus.Counter
	// lastRun, lastSuccess and lastDuration describe the last run.
	lastRun      prometheus.Gauge
	lastSuccess  prometheus.Gauge
	lastDuration prometheus.Gauge
	// runs counts runs by outcome.
	runs *prometheus.CounterVec
}

// NewMetrics creates the collector's series and registers them on reg (nil:
// unregistered):
//
//   - binderbuild_gc_registry_bytes: compressed bytes under the image prefix
//     (shared layers once), as listed by the last run minus what it freed;
//   - binderbuild_gc_registry_images: images (manifests) under the prefix,
//     likewise;
//   - binderbuild_gc_images_deleted_total, binderbuild_gc_bytes_deleted_total:
//     images deleted and the bytes that no remaining image references;
//   - binderbuild_gc_deletions_failed_total: deletions that failed;
//   - binderbuild_gc_last_run_timestamp_seconds, binderbuild_gc_last_run_success
//     (1 when every deletion succeeded, 0 otherwise),
//     binderbuild_gc_last_run_duration_seconds;
//   - binderbuild_gc_runs_total{outcome="success|partial|error"} (partial:
//     some deletions failed; error: the run stopped before deleting).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		registryBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderbuild_gc_registry_bytes",
			Help: "Compressed bytes of the images under the image prefix (shared layers counted once), after the last garbage-collection run.",
		}),
		registryImages: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderbuild_gc_registry_images",
			Help: "Images (manifests) under the image prefix after the last garbage-collection run.",
		}),
		deletedImages: f.NewCounter(prometheus.CounterOpts{
			Name: "binderbuild_gc_images_deleted_total",
			Help: "Images deleted by garbage collection.",
		}),
		deletedBytes: f.NewCounter(prometheus.CounterOpts{
			Name: "binderbuild_gc_bytes_deleted_total",
			Help: "Compressed bytes no longer referenced after garbage-collection deletions (reclaimed once the registry garbage-collects its blobs).",
		}),
		failedDeletions: f.NewCounter(prometheus.CounterOpts{
			Name: "binderbuild_gc_deletions_failed_total",
			Help: "Image deletions that failed after retries.",
		}),
		lastRun: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderbuild_gc_last_run_timestamp_seconds",
			Help: "Unix time the last garbage-collection run finished.",
		}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderbuild_gc_last_run_success",
			Help: "1 if the last garbage-collection run listed the registry and every deletion succeeded, else 0.",
		}),
		lastDuration: f.NewGauge(prometheus.GaugeOpts{
			Name: "binderbuild_gc_last_run_duration_seconds",
			Help: "Duration of the last garbage-collection run.",
		}),
		runs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderbuild_gc_runs_total",
			Help: "Garbage-collection runs by outcome: success, partial (some deletions failed) or error (stopped before deleting).",
		}, []string{"outcome"}),
	}
}

// observeRun records one Run that started at start.
func (m *Metrics) observeRun(rep Report, err error, start time.Time) {
	if m == nil {
		return
	}
	end := time.Now()
	if !rep.Finished.IsZero() {
		end = rep.Finished
	}
	m.lastRun.Set(float64(end.UnixNano()) / 1e9)
	m.lastDuration.Set(end.Sub(start).Seconds())
	var derr *DeleteError
	switch {
	case err == nil:
		m.runs.WithLabelValues(outcomeSuccess).Inc()
		m.lastSuccess.Set(1)
	case errors.As(err, &derr):
		m.runs.WithLabelValues(outcomePartial).Inc()
		m.lastSuccess.Set(0)
	default:
		m.runs.WithLabelValues(outcomeError).Inc()
		m.lastSuccess.Set(0)
		return
	}
	if rep.DryRun {
		m.registryImages.Set(float64(rep.Images))
		m.registryBytes.Set(float64(rep.TotalBytes))
		return
	}
	m.registryImages.Set(float64(rep.Images - rep.Deleted))
	m.registryBytes.Set(float64(rep.RemainingBytes))
	m.deletedImages.Add(float64(rep.Deleted))
	m.deletedBytes.Add(float64(rep.FreedBytes))
	m.failedDeletions.Add(float64(rep.Failed))
}
