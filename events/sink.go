package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binderbuild/binderbuild/internal/pushlist"
	"github.com/binderbuild/binderbuild/internal/units"
)

// Sink takes encoded event lines (one JSON object each, without newline).
// Send must not block on I/O: sinks queue lines in a bounded buffer and
// write them from their own goroutine.
type Sink interface {
	Send(line []byte)
	// Close writes what is queued and stops, or gives up when ctx ends.
	Close(ctx context.Context) error
}

// SinkConfig chooses and tunes the event sink. The tags document the
// environment variables cmd reads them from (prefix BINDERBUILD_).
type SinkConfig struct {
	EventsSink          string        `split_words:"true" default:"stdout" desc:"where launch and build events go: stdout (JSON lines), file, http or none"`
	EventsFile          string        `split_words:"true" desc:"file the file sink appends JSON lines to (required with BINDERBUILD_EVENTS_SINK=file)"`
	EventsFileMaxBytes  units.Bytes   `split_words:"true" default:"100Mi" desc:"size at which the events file is rotated to <file>.1, <file>.2, ..., as a Kubernetes quantity (100Mi, 1G; 0: never)"`
	EventsFileBackups   int           `split_words:"true" default:"5" desc:"rotated events files kept"`
	EventsUrl           string        `split_words:"true" desc:"URL the http sink POSTs batches of JSON lines to (required with BINDERBUILD_EVENTS_SINK=http); user info in it becomes basic auth"`
	EventsBatchSize     int           `split_words:"true" default:"100" desc:"most events in one POST of the http sink"`
	EventsBufferSize    int           `split_words:"true" default:"10000" desc:"events a sink holds while it is behind; when full the oldest are dropped (binderbuild_events_dropped_total)"`
	EventsFlushInterval time.Duration `split_words:"true" default:"1s" desc:"how long the http sink waits for more events before it POSTs a batch"`
	EventsMaxRetries    int           `split_words:"true" default:"5" desc:"retries of a failed POST (backoff from 1s doubling to 1m) before its events are dropped"`
	EventsTimeout       time.Duration `split_words:"true" default:"10s" desc:"timeout of one POST of the http sink"`
	// RetryBackoff and MaxBackoff bound the http sink's exponential
	// backoff. Defaults 1s and 1m.
	RetryBackoff time.Duration `ignored:"true"`
	MaxBackoff   time.Duration `ignored:"true"`
}

// Validate checks the settings of the chosen sink.
func (c SinkConfig) Validate() error {
	switch c.EventsSink {
	case "", "stdout", "none":
	case "file":
		if c.EventsFile == "" {
			return errors.New("BINDERBUILD_EVENTS_SINK=file needs BINDERBUILD_EVENTS_FILE")
		}
	case "http":
		u, err := url.Parse(c.EventsUrl)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("invalid BINDERBUILD_EVENTS_URL=%q: want an http(s) URL", Redact(c.EventsUrl))
		}
	default:
		return fmt.Errorf("invalid BINDERBUILD_EVENTS_SINK=%q: want stdout, file, http or none", c.EventsSink)
	}
	if c.EventsBufferSize < 0 || c.EventsBatchSize < 0 || c.EventsMaxRetries < 0 {
		return errors.New("BINDERBUILD_EVENTS_BUFFER_SIZE, _BATCH_SIZE and _MAX_RETRIES must not be negative")
	}
	return nil
}

// Open returns the sink cfg chooses. stdout is the standard output; client
// makes the http sink's requests (nil: http.DefaultClient, each POST bounded
// by EventsTimeout). m and log may be nil.
func Open(cfg SinkConfig, stdout io.Writer, client *http.Client, m *Metrics, log *slog.Logger) (Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.EventsSink {
	case "none":
		return Discard{}, nil
	case "file":
		return NewFileSink(cfg.EventsFile, int64(cfg.EventsFileMaxBytes), cfg.EventsFileBackups, cfg.EventsBufferSize, m, log)
	case "http":
		return NewHTTPSink(cfg, client, m, log), nil
	default:
		return NewWriterSink(stdout, cfg.EventsBufferSize, m, log), nil
	}
}

// Discard is the sink of BINDERBUILD_EVENTS_SINK=none.
type Discard struct{}

// Send drops line.
func (Discard) Send([]byte) {}

// Close does nothing.
func (Discard) Close(context.Context) error { return nil }

// defaultBuffer is the bound of a sink buffer given as 0.
const defaultBuffer = 10000

// lineQueue is a bounded FIFO of lines that drops its oldest lines when
// full. A push takes no lock: the line goes on a list with an atomic
// swap, so that requests that all emit events do not queue on one mutex
// (at 256 clients, that mutex was where the slowest requests waited). The
// consumer, or a pusher that finds the queue over its bound, moves the
// list into the ordered backlog under mu.
type lineQueue struct {
	pushed pushlist.List[[]byte] // not yet in the backlog
	count  atomic.Int64          // lines being pushed or queued, not yet taken or dropped
	max    int64
	wake   chan struct{} // receives a value after a push
	m      *Metrics

	mu      sync.Mutex
	backlog [][]byte // oldest first
}

func newLineQueue(max int, m *Metrics) *lineQueue {
	if max <= 0 {
		max = defaultBuffer
	}
	return &lineQueue{max: int64(max), wake: make(chan struct{}, 1), m: m}
}

// push adds line, dropping the oldest lines when the queue is full. It
// never blocks on the consumer.
func (q *lineQueue) push(line []byte) {
	if q.count.Add(1) > q.max { // counted first: the consumer never sees more than max
		q.trim()
	}
	q.pushed.Push(line)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// trim drops the oldest lines beyond max.
func (q *lineQueue) trim() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.collect()
	for q.count.Load() > q.max && len(q.backlog) > 0 {
		q.backlog[0] = nil
		q.backlog = q.backlog[1:]
		q.count.Add(-1)
		q.m.drop(dropBufferFull)
	}
}

// collect moves the pushed lines to the backlog; q.mu is held.
func (q *lineQueue) collect() { q.backlog = q.pushed.Take(q.backlog) }

// take removes up to n lines (all for n <= 0), oldest first, and returns
// them in dst's array: when it takes every line it swaps arrays with dst.
// A consumer that clears and passes its last batch back allocates nothing.
func (q *lineQueue) take(dst [][]byte, n int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.collect()
	if n <= 0 || n >= len(q.backlog) {
		out := q.backlog
		q.backlog = dst[:0]
		q.count.Add(-int64(len(out)))
		return out
	}
	dst = append(dst[:0], q.backlog[:n]...)
	clear(q.backlog[:n])
	q.backlog = q.backlog[n:]
	q.count.Add(-int64(n))
	return dst
}

// len is the number of lines queued.
func (q *lineQueue) len() int { return int(q.count.Load()) }

// writerSink writes lines to an io.Writer from its own goroutine.
type writerSink struct {
	q      *lineQueue
	w      io.Writer
	closer io.Closer // closed by Close, when set
	m      *Metrics
	log    *slog.Logger
	buf    []byte   // the lines of one write, reused
	batch  [][]byte // the lines taken for one write, reused
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

// NewWriterSink returns a sink writing one line per event to w (the
// stdout sink), holding at most buffer lines (0: 10000) while w is slow.
// Close does not close w.
func NewWriterSink(w io.Writer, buffer int, m *Metrics, log *slog.Logger) Sink {
	return newWriterSink(w, nil, buffer, m, log)
}

func newWriterSink(w io.Writer, closer io.Closer, buffer int, m *Metrics, log *slog.Logger) *writerSink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &writerSink{q: newLineQueue(buffer, m), w: w, closer: closer, m: m, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *writerSink) Send(line []byte) { s.q.push(line) }

func (s *writerSink) run() {
	defer close(s.done)
	for {
		select {
		case <-s.q.wake:
			s.drain()
		case <-s.stop:
			s.drain()
			return
		}
	}
}

// drain writes the queued lines, as many as the queue hands out at once
// in one write: under load, many events cost one system call.
func (s *writerSink) drain() {
	for {
		s.batch = s.q.take(s.batch, 256)
		if len(s.batch) == 0 {
			return
		}
		s.buf = s.buf[:0]
		for _, l := range s.batch {
			s.buf = append(append(s.buf, l...), '\n')
		}
		clear(s.batch) // the lines are copied: let them go
		if _, err := s.w.Write(s.buf); err != nil {
			s.m.dropN(dropSendFailed, len(s.batch))
			s.log.Error("write events", "error", err)
		}
	}
}

func (s *writerSink) Close(ctx context.Context) error {
	s.closed.Do(func() { close(s.stop) })
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}
