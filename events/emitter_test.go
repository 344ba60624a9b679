package events

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memSink keeps the lines sent to it.
type memSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *memSink) Send(line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, string(line))
}

func (s *memSink) Close(context.Context) error { return nil }

func (s *memSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func newTestEmitter(t *testing.T, sink Sink, m *Metrics, secrets ...string) *Emitter {
	t.Helper()
	e, err := NewEmitter(sink, NewRedactor(secrets...), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.now = func() time.Time { return time.Date(2026, 4, 20, 12, 0, 0, 123456789, time.FixedZone("x", 3600)) }
	return e
}

func TestLaunchEventLine(t *testing.T) {
	sink := &memSink{}
	e := newTestEmitter(t, sink, nil)
	e.Emit(Launch{Provider: "GitHub", Spec: "org/repo/HEAD", Ref: "1479e0252b2e648bb755ee913292b79495931717",
		Status: LaunchSuccess, BuildToken: false, Origin: "binder.example.org", RequestOrigin: "same-origin"})
	want := `{"timestamp": "2026-04-20T11:00:00.123456Z", "schema": "binderhub.jupyter.org/launch", "version": 6, ` +
		`"provider": "GitHub", "spec": "org/repo/HEAD", "ref": "1479e0252b2e648bb755ee913292b79495931717", "status": "success", ` +
		`"build_token": false, "origin": "binder.example.org", "request_origin": "same-origin"}`
	got := sink.all()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("lines = %q, want [%s]", got, want)
	}
	s, err := LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ValidateLine([]byte(got[0])); err != nil {
		t.Error(err)
	}
}

func TestBuildEventsValidate(t *testing.T) {
	sink := &memSink{}
	e := newTestEmitter(t, sink, nil)
	base := Build{Name: "r2d-abc", Provider: "GitHub", Spec: "org/repo/HEAD", Ref: "abc", Image: "registry.example.com/binder/r2d-abc:abc"}
	steps := []Build{base, base, base, base, base}
	steps[0].Step = BuildQueued
	steps[1].Step, steps[1].Queue = BuildStarted, 1500*time.Millisecond
	steps[2].Step, steps[2].Cause, steps[2].Duration = BuildSucceeded, CauseSuccess, 90*time.Second
	steps[2].PhaseTimes = map[string]time.Duration{"waiting": time.Second, "fetching": 2 * time.Second, "building": 80 * time.Second, "pushing": 7 * time.Second}
	steps[3].Step, steps[3].Cause, steps[3].Duration = BuildFailed, CauseOOM, time.Minute
	steps[3].PhaseTimes = map[string]time.Duration{"waiting": time.Second}
	steps[4].Step, steps[4].Cause, steps[4].CacheHit = BuildSucceeded, CauseSuccess, true
	for _, b := range steps {
		e.Emit(b)
	}
	got := sink.all()
	if len(got) != len(steps) {
		t.Fatalf("%d lines, want %d: %q", len(got), len(steps), got)
	}
	if want := `"event": "succeeded", "build_name": "r2d-abc", "provider": "GitHub", "spec": "org/repo/HEAD", "ref": "abc", "image": "registry.example.com/binder/r2d-abc:abc", "cache_hit": false, "cause": "success", "duration_seconds": 90, "phase_seconds": {"waiting": 1, "fetching": 2, "building": 80, "pushing": 7}}`; !strings.HasSuffix(got[2], want) {
		t.Errorf("succeeded line = %s, want suffix %s", got[2], want)
	}
	s, _ := LoadSchemas()
	for _, l := range got {
		if err := s.ValidateLine([]byte(l)); err != nil {
			t.Error(err)
		}
	}
}

// An emitter that validates (ValidateWith) drops what its schema refuses;
// the schemas themselves catch such records in tests.
func TestInvalidEventsAreDropped(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	e := newTestEmitter(t, sink, m)
	schemas, err := LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	e.ValidateWith(schemas)
	e.Emit(Launch{Provider: "Nope", Status: LaunchSuccess})
	e.Emit(Build{Step: BuildFailed, Name: "x", Cause: CauseSuccess}) // a failure must have a failure cause
	e.Emit(Build{Step: BuildQueued, Name: "x", CacheHit: true})      // only a succeeded event may be a cache hit
	e.EmitPrepared(e.Prepare(Launch{Provider: "Nope"}))
	if got := sink.all(); len(got) != 0 {
		t.Errorf("invalid events were emitted: %q", got)
	}
	if got := testutil.ToFloat64(m.dropped.WithLabelValues(dropInvalid)); got != 4 {
		t.Errorf("dropped{invalid} = %v, want 4", got)
	}
	e.EmitPrepared(e.Prepare(Launch{Provider: "GitHub", Spec: "o/r/HEAD", Status: LaunchSuccess}))
	if got := testutil.ToFloat64(m.emitted.WithLabelValues(LaunchSchema)); got != 1 || len(sink.all()) != 1 {
		t.Errorf("emitted{launch} = %v with lines %q, want 1 and one line", got, sink.all())
	}
	var nilEmitter *Emitter
	nilEmitter.Emit(Launch{}) // must not panic
}

// A prepared record is emitted as Emit emits it, stamped at each emission.
func TestEmitPreparedMatchesEmit(t *testing.T) {
	sink := &memSink{}
	e := newTestEmitter(t, sink, nil, "ghp_configuredtoken")
	rec := Build{Step: BuildSucceeded, CacheHit: true, Cause: CauseSuccess, Name: "r2d-abc", Provider: "GitHub",
		Spec: "org/repo/ghp_configuredtoken", Ref: "abc", Image: "registry.example.com/binder/r2d-abc:abc"}
	p := e.Prepare(rec)
	e.Emit(rec)
	e.EmitPrepared(p)
	e.now = func() time.Time { return time.Date(2026, 4, 21, 0, 0, 0, 0, time.UTC) }
	e.EmitPrepared(p)
	got := sink.all()
	if len(got) != 3 || got[1] != got[0] {
		t.Fatalf("lines = %q, want the prepared line equal to the emitted one", got)
	}
	if want := strings.Replace(got[0], "2026-04-20T11:00:00.123456Z", "2026-04-21T00:00:00.000000Z", 1); got[2] != want {
		t.Errorf("later line = %s, want %s", got[2], want)
	}
	if strings.Contains(got[0], "ghp_configuredtoken") {
		t.Errorf("line %s is not redacted", got[0])
	}
	s, _ := LoadSchemas()
	if err := s.ValidateLine([]byte(got[2])); err != nil {
		t.Error(err)
	}
	var nilEmitter *Emitter
	nilEmitter.EmitPrepared(nilEmitter.Prepare(rec)) // must not panic
}

func TestEmitterRedacts(t *testing.T) {
	sink := &memSink{}
	e := newTestEmitter(t, sink, nil, "ghp_configuredtoken")
	e.Emit(Launch{Provider: "Git", Spec: "https%3A%2F%2Fuser%3Apassw0rd%40example.com%2Frepo.git/main", Ref: "ghp_configuredtoken",
		Status: LaunchFailure, Origin: "https://u:p@x.example"})
	got := strings.Join(sink.all(), "\n")
	for _, secret := range []string{"passw0rd", "ghp_configuredtoken", "u:p"} {
		if strings.Contains(got, secret) {
			t.Errorf("event %s contains %q", got, secret)
		}
	}
	if !strings.Contains(got, `"spec": "https%3A%2F%2Fredacted%40example.com%2Frepo.git/main"`) {
		t.Errorf("event %s: spec not redacted as expected", got)
	}
}

// TestEveryRecordValidates: every record type, with every status, step
// and cause, empty optional fields and hostile text, matches its schema;
// the schemas refuse a status or cause they do not know.
func TestEveryRecordValidates(t *testing.T) {
	s, err := LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	hostile := "org/\"repo\"\\\n\t\x00\x7fü😀/HEAD"
	var records []Record
	for _, status := range []string{LaunchSuccess, LaunchFailure} {
		for _, tok := range []bool{false, true} {
			records = append(records,
				Launch{Provider: "GitHub", Spec: "org/repo/HEAD", Ref: "abc", Status: status, BuildToken: tok, Origin: "binder.example.org", RequestOrigin: "same-origin"},
				Launch{Provider: "Git", Spec: hostile, Status: status, BuildToken: tok})
		}
	}
	base := Build{Name: "r2d-abc", Provider: "GitHub", Spec: hostile, Ref: "abc", Image: "registry.example.com/binder/r2d-abc:abc"}
	for _, step := range []BuildStep{BuildQueued, BuildStarted} {
		b := base
		b.Step, b.Queue = step, time.Second
		records = append(records, b)
	}
	for _, cause := range []Cause{CauseSuccess, CauseFailed, CauseOOM, CauseDeadline, CauseEvicted, CauseUnschedulable, CauseCancelled} {
		b := base
		b.Step, b.Cause, b.Duration = BuildFailed, cause, 3*time.Second
		if cause == CauseSuccess {
			b.Step, b.CacheHit = BuildSucceeded, true
			records = append(records, b)
			b.CacheHit = false
		}
		records = append(records, b)
		b.PhaseTimes = map[string]time.Duration{"waiting": time.Second, "building": 2 * time.Second}
		records = append(records, b)
	}
	sink := &memSink{}
	e := newTestEmitter(t, sink, nil)
	for _, r := range records {
		e.Emit(r)
	}
	lines := sink.all()
	if len(lines) != len(records) {
		t.Fatalf("%d lines for %d records", len(lines), len(records))
	}
	for _, l := range lines {
		if err := s.ValidateLine([]byte(l)); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
	for _, bad := range []Record{
		Launch{Provider: "GitHub", Spec: "o/r/HEAD", Status: "maybe"},
		Build{Step: BuildFailed, Cause: "bad-luck", Name: "n", Provider: "GitHub", Spec: "o/r/HEAD", Image: "i"},
		Build{Step: "exploded", Name: "n", Provider: "GitHub", Spec: "o/r/HEAD", Image: "i"},
		Build{Step: BuildSucceeded, Cause: CauseOOM, Name: "n", Provider: "GitHub", Spec: "o/r/HEAD", Image: "i"},
	} {
		if line := e.encode(bad); s.ValidateLine(line) == nil {
			t.Errorf("the schema accepts %s", line)
		}
	}
}

// appendTimestamp writes what AppendFormat writes with TimestampFormat.
func FuzzAppendTimestamp(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1776686400), int64(123456789))
	f.Add(int64(-62135596800), int64(999999999)) // year 1
	f.Add(int64(253402300799), int64(999999))    // 9999-12-31T23:59:59
	f.Add(int64(253402300800), int64(0))         // year 10000
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		at := time.Unix(sec, nsec)
		want := at.UTC().Format(TimestampFormat)
		if got := string(appendTimestamp([]byte("x"), at)); got != "x"+want {
			t.Errorf("appendTimestamp(%v) = %q, want %q", at, got, "x"+want)
		}
	})
}
