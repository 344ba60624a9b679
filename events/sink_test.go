package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// receiver is an HTTP event endpoint recording the bodies it accepted.
type receiver struct {
	mu     sync.Mutex
	bodies []string
	calls  int
	handle func(w http.ResponseWriter, r *http.Request) bool // false: reject
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.calls++
	rc.mu.Unlock()
	if r.Header.Get("Content-Type") != "application/x-ndjson" {
		http.Error(w, "bad content type", http.StatusBadRequest)
		return
	}
	if rc.handle != nil && !rc.handle(w, r) {
		return
	}
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, string(body))
	rc.mu.Unlock()
}

func (rc *receiver) lines() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, b := range rc.bodies {
		out = append(out, strings.Split(strings.TrimSuffix(b, "\n"), "\n")...)
	}
	return out
}

func line(i int) []byte { return []byte(fmt.Sprintf(`{"n": %d}`, i)) }

// TestHTTPSinkSlowReceiver: while the receiver holds the first POST, Send
// keeps returning (the test goroutine would otherwise hang here), the
// bounded buffer drops its oldest events and counts them, and the newest
// arrive once the receiver answers again.
func TestHTTPSinkSlowReceiver(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	rc := &receiver{handle: func(http.ResponseWriter, *http.Request) bool {
		once.Do(func() {
			close(entered)
			<-release
		})
		return true
	}}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	defer close(release)
	m := NewMetrics(prometheus.NewPedanticRegistry())
	s := NewHTTPSink(SinkConfig{EventsUrl: ts.URL, EventsBatchSize: 2, EventsBufferSize: 3}, ts.Client(), m, nil)

	s.Send(line(1))
	<-entered // the sink is now blocked in a POST of event 1
	for i := 2; i <= 10; i++ {
		s.Send(line(i))
	}
	if got := testutil.ToFloat64(m.dropped.WithLabelValues(dropBufferFull)); got != 6 {
		t.Errorf("dropped{buffer_full} = %v, want 6 (events 2-7)", got)
	}
	release <- struct{}{}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"n": 1}`, `{"n": 8}`, `{"n": 9}`, `{"n": 10}`}
	if got := rc.lines(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("received %q, want %q", got, want)
	}
}

// TestHTTPSinkFailingReceiver: a receiver answering 500 gets each batch
// 1+EventsMaxRetries times, then the batch is dropped and counted; a 400 is
// not retried.
func TestHTTPSinkFailingReceiver(t *testing.T) {
	status := http.StatusInternalServerError
	rc := &receiver{handle: func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(status)
		return false
	}}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	m := NewMetrics(prometheus.NewPedanticRegistry())
	// The flush interval holds the three lines until Close: one batch.
	s := NewHTTPSink(SinkConfig{EventsUrl: ts.URL, EventsBatchSize: 10, EventsFlushInterval: time.Hour, EventsMaxRetries: 2, RetryBackoff: time.Millisecond}, ts.Client(), m, nil)
	for i := range 3 {
		s.Send(line(i))
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.dropped.WithLabelValues(dropSendFailed)); got != 3 {
		t.Errorf("dropped{send_failed} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.retries); got != 2 {
		t.Errorf("retries = %v, want 2", got)
	}
	if rc.calls != 3 {
		t.Errorf("receiver called %d times, want 3", rc.calls)
	}

	status = http.StatusBadRequest
	rc.calls = 0
	s = NewHTTPSink(SinkConfig{EventsUrl: ts.URL, EventsMaxRetries: 2, RetryBackoff: time.Millisecond}, ts.Client(), m, nil)
	s.Send(line(1))
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rc.calls != 1 {
		t.Errorf("a 400 was sent %d times, want once", rc.calls)
	}
}

// TestHTTPSinkCloseGivesUp: a receiver that never answers holds Close only
// until its context ends.
func TestHTTPSinkCloseGivesUp(t *testing.T) {
	entered := make(chan struct{}, 1)
	rc := &receiver{handle: func(_ http.ResponseWriter, r *http.Request) bool {
		entered <- struct{}{}
		<-r.Context().Done()
		return false
	}}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	m := NewMetrics(prometheus.NewPedanticRegistry())
	s := NewHTTPSink(SinkConfig{EventsUrl: ts.URL}, ts.Client(), m, nil)
	s.Send(line(1))
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if got := testutil.ToFloat64(m.dropped.WithLabelValues(dropSendFailed)); got != 1 {
		t.Errorf("dropped{send_failed} = %v, want 1", got)
	}
}

// TestWriterSinkBlockedWriter: a writer that never returns does not block
// Send; the buffer keeps the newest events.
func TestWriterSinkBlockedWriter(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	m := NewMetrics(prometheus.NewPedanticRegistry())
	s := NewWriterSink(pw, 2, m, nil)
	for i := range 100 {
		s.Send(line(i))
	}
	// The sink's goroutine holds at most the two lines it took before its
	// Write blocked; the queue holds two more.
	if got := testutil.ToFloat64(m.dropped.WithLabelValues(dropBufferFull)); got < 96 {
		t.Errorf("dropped{buffer_full} = %v, want at least 96", got)
	}
	pr.Close() // the blocked Write fails; Close returns
	_ = s.Close(t.Context())
}

// TestWriterSinkBatches: lines queued while a write is under way go out
// together in the next write, whole and in order.
func TestWriterSinkBatches(t *testing.T) {
	w := &heldWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := NewWriterSink(w, 0, nil, nil)
	s.Send(line(0))
	<-w.entered // the first write is under way until released
	var want strings.Builder
	for i := 1; i < 100; i++ {
		s.Send(line(i))
		want.Write(line(i))
		want.WriteByte('\n')
	}
	close(w.release)
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) != 2 || w.writes[0] != string(line(0))+"\n" || w.writes[1] != want.String() {
		t.Errorf("writes %q, want the first line, then the other 99 in one write", w.writes)
	}
}

// heldWriter holds its first write until release is closed.
type heldWriter struct {
	entered, release chan struct{}
	writes           []string
}

func (w *heldWriter) Write(p []byte) (int, error) {
	if len(w.writes) == 0 {
		w.entered <- struct{}{}
		<-w.release
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestFileSinkRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	lineLen := int64(len(line(10)) + 1)
	s, err := NewFileSink(path, 3*lineLen, 2, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		s.Send(line(i))
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		path:        "{\"n\": 19}\n",
		path + ".1": "{\"n\": 16}\n{\"n\": 17}\n{\"n\": 18}\n",
		path + ".2": "{\"n\": 13}\n{\"n\": 14}\n{\"n\": 15}\n",
	}
	for p, w := range want {
		got, err := os.ReadFile(p)
		if err != nil || string(got) != w {
			t.Errorf("%s = %q, %v, want %q", filepath.Base(p), got, err, w)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("more backups than configured")
	}
	if _, err := NewFileSink(filepath.Join(t.TempDir(), "no", "such", "dir"), 0, 0, 0, nil, nil); err == nil {
		t.Error("NewFileSink in a missing directory succeeded")
	}
}

func TestOpenValidates(t *testing.T) {
	tests := []struct {
		cfg  SinkConfig
		want string
	}{
		{SinkConfig{EventsSink: "kafka"}, "invalid BINDERBUILD_EVENTS_SINK"},
		{SinkConfig{EventsSink: "file"}, "needs BINDERBUILD_EVENTS_FILE"},
		{SinkConfig{EventsSink: "http", EventsUrl: "ftp://u:secret@x"}, `invalid BINDERBUILD_EVENTS_URL="ftp://redacted@x"`},
	}
	for _, tc := range tests {
		_, err := Open(tc.cfg, io.Discard, nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	for _, sink := range []string{"", "stdout", "none"} {
		s, err := Open(SinkConfig{EventsSink: sink}, io.Discard, nil, nil, nil)
		if err != nil {
			t.Fatalf("Open(%q) = %v", sink, err)
		}
		_ = s.Close(t.Context())
	}
}

// A queue drained by a consumer that passes its batch back allocates
// nothing once warm, keeps order, and drops its oldest line when full.
func TestLineQueueReusesItsArrays(t *testing.T) {
	q := newLineQueue(3, nil)
	line := []byte("x")
	var batch [][]byte
	allocs := testing.AllocsPerRun(100, func() {
		q.push(line)
		q.push(line)
		batch = q.take(batch, 0)
	})
	if allocs != 0 {
		t.Errorf("push, push, take allocates %v times, want 0", allocs)
	}
	for _, l := range []string{"a", "b", "c", "d"} {
		q.push([]byte(l))
	}
	batch = q.take(batch, 2)
	rest := q.take(nil, 0)
	if got := string(bytes.Join(append(batch, rest...), nil)); got != "bcd" {
		t.Errorf("lines %q, want bcd: the oldest dropped, order kept", got)
	}
}

// Concurrent pushes with a consumer: each pusher's lines come out in its
// order, the consumer never holds more than max, and every line is either
// taken or counted as dropped.
func TestLineQueueConcurrentPushes(t *testing.T) {
	const pushers, each, max = 8, 2000, 50
	m := NewMetrics(prometheus.NewPedanticRegistry())
	q := newLineQueue(max, m)
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for i := range each {
				q.push([]byte(fmt.Sprintf("%d %d", p, i)))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := map[int]int{}
	taken := 0
	var batch [][]byte
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		batch = q.take(batch, 0)
		if len(batch) > max {
			t.Fatalf("took %d lines at once, max %d", len(batch), max)
		}
		for _, l := range batch {
			var p, i int
			fmt.Sscanf(string(l), "%d %d", &p, &i)
			if prev, ok := last[p]; ok && i <= prev {
				t.Fatalf("pusher %d: line %d after %d", p, i, prev)
			}
			last[p] = i
		}
		taken += len(batch)
		clear(batch)
	}
	taken += len(q.take(nil, 0))
	dropped := int(testutil.ToFloat64(m.dropped.WithLabelValues(dropBufferFull)))
	if taken+dropped != pushers*each {
		t.Errorf("%d taken + %d dropped, want %d", taken, dropped, pushers*each)
	}
}
