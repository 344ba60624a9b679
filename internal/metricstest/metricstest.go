// Package metricstest checks Prometheus metric families in tests: names,
// types, help strings, label names and histogram buckets.
package metricstest

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Family is one row of the metric table: upstream BinderHub's for the
// binderhub_ names (spec §15), ours for the binderbuild_ ones.
type Family struct {
	Name    string
	Type    dto.MetricType
	Help    string // "" for our own series: any non-empty help
	Labels  []string
	Buckets []float64
}

// Check gathers reg and compares every family named in want.
func Check(t testing.TB, reg prometheus.Gatherer, want []Family) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	for _, w := range want {
		mf, ok := got[w.Name]
		if !ok {
			t.Errorf("%s not exposed", w.Name)
			continue
		}
		if mf.GetType() != w.Type {
			t.Errorf("%s type = %v, want %v", w.Name, mf.GetType(), w.Type)
		}
		if (w.Help != "" && mf.GetHelp() != w.Help) || mf.GetHelp() == "" {
			t.Errorf("%s help = %q, want %q", w.Name, mf.GetHelp(), w.Help)
		}
		for _, m := range mf.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
			}
			if !slices.Equal(names, w.Labels) {
				t.Errorf("%s labels = %q, want %q", w.Name, names, w.Labels)
			}
			if w.Buckets != nil {
				var bounds []float64
				for _, b := range m.GetHistogram().GetBucket() {
					bounds = append(bounds, b.GetUpperBound())
				}
				if !slices.Equal(bounds, w.Buckets) {
					t.Errorf("%s buckets = %v, want %v", w.Name, bounds, w.Buckets)
				}
			}
		}
	}
}
