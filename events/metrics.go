package events

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons an event is dropped: the values of the reason label of
// binderbuild_events_dropped_total.
const (
	dropBufferFull = "buffer_full"
	dropSendFailed = "send_failed"
	dropInvalid    = "invalid"
)

// Metrics are the Prometheus series of the event emitter and its sinks. A
// nil *Metrics records nothing.
type Metrics struct {
	emitted *prometheus.CounterVec
	dropped *prometheus.CounterVec
	retries prometheus.Counter
}

// NewMetrics creates the series and registers them on reg:
//
//   - binderbuild_events_emitted_total{schema} (counter): events handed to
//     the sink;
//   - binderbuild_events_dropped_total{reason="buffer_full|send_failed|invalid"}
//     (counter): events lost because the sink's buffer was full (the oldest
//     go first), because the HTTP sink gave up on them, or because they did
//     not match their schema;
//   - binderbuild_events_send_retries_total (counter): HTTP sink retries.
//
// A nil reg creates unregistered series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		emitted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderbuild_events_emitted_total",
			Help: "Events handed to the event sink, by schema.",
		}, []string{"schema"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "binderbuild_events_dropped_total",
			Help: "Events lost, by reason: buffer_full (the sink's bounded buffer dropped its oldest event), send_failed (the HTTP sink gave up), invalid (the event did not match its schema).",
		}, []string{"reason"}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "binderbuild_events_send_retries_total",
			Help: "Retried HTTP event sink requests.",
		}),
	}
	for _, r := range []string{dropBufferFull, dropSendFailed, dropInvalid} {
		m.dropped.WithLabelValues(r)
	}
	for _, s := range []string{LaunchSchema, BuildSchema} {
		m.emitted.WithLabelValues(s)
	}
	return m
}

func (m *Metrics) emit(schema string) {
	if m != nil {
		m.emitted.WithLabelValues(schema).Inc()
	}
}

// emitCounter returns what counts one event of schema, bound once.
func (m *Metrics) emitCounter(schema string) func() {
	if m == nil {
		return func() {}
	}
	return m.emitted.WithLabelValues(schema).Inc
}

func (m *Metrics) drop(reason string) { m.dropN(reason, 1) }

func (m *Metrics) dropN(reason string, n int) {
	if m != nil && n > 0 {
		m.dropped.WithLabelValues(reason).Add(float64(n))
	}
}

func (m *Metrics) retry() {
	if m != nil {
		m.retries.Inc()
	}
}
