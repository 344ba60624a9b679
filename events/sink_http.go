package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/binderbuild/binderbuild/internal/wait"
)

// httpSink POSTs batches of JSON lines from its own goroutine.
type httpSink struct {
	cfg    SinkConfig
	client *http.Client
	q      *lineQueue
	m      *Metrics
	log    *slog.Logger
	url    string // redacted, for logs

	cancel context.CancelFunc // ends the request in flight when Close gives up
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

// NewHTTPSink returns a sink that POSTs events to cfg.EventsUrl as
// application/x-ndjson, up to EventsBatchSize (0: 100) lines per request.
// It waits EventsFlushInterval after the first queued event for more, holds
// at most EventsBufferSize events (0: 10000; when full the oldest are
// dropped), and retries a failed POST (network errors, 408, 429 and 5xx)
// EventsMaxRetries times with exponential backoff from RetryBackoff (0: 1s)
// to MaxBackoff (0: 1m) before dropping its events. Each POST is bounded by
// EventsTimeout (0: 10s). Send never blocks; drops and retries are counted
// in m. client nil means http.DefaultClient.
func NewHTTPSink(cfg SinkConfig, client *http.Client, m *Metrics, log *slog.Logger) Sink {
	if client == nil {
		client = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.EventsBatchSize <= 0 {
		cfg.EventsBatchSize = 100
	}
	if cfg.EventsTimeout <= 0 {
		cfg.EventsTimeout = 10 * time.Second
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &httpSink{
		cfg: cfg, client: client, q: newLineQueue(cfg.EventsBufferSize, m), m: m, log: log,
		url: Redact(cfg.EventsUrl), cancel: cancel,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.run(ctx)
	return s
}

func (s *httpSink) Send(line []byte) { s.q.push(line) }

func (s *httpSink) run(ctx context.Context) {
	defer close(s.done)
	defer s.cancel()
	for {
		select {
		case <-s.q.wake:
		case <-s.stop:
			s.flush(ctx)
			return
		}
		if s.cfg.EventsFlushInterval > 0 && s.q.len() < s.cfg.EventsBatchSize {
			t := time.NewTimer(s.cfg.EventsFlushInterval)
			select {
			case <-t.C:
			case <-s.stop:
			}
			t.Stop()
		}
		s.flush(ctx)
	}
}

// flush sends everything queued, batch by batch.
func (s *httpSink) flush(ctx context.Context) {
	for {
		batch := s.q.take(nil, s.cfg.EventsBatchSize)
		if len(batch) == 0 {
			return
		}
		s.send(ctx, batch)
	}
}

// send POSTs one batch, retrying with backoff, and drops it when it cannot.
func (s *httpSink) send(ctx context.Context, batch [][]byte) {
	body := bytes.Join(batch, []byte("\n"))
	body = append(body, '\n')
	retry := wait.Retry{Attempts: s.cfg.EventsMaxRetries + 1, Delay: s.cfg.RetryBackoff, MaxDelay: s.cfg.MaxBackoff,
		Retryable: func(err error) bool { _, ok := errors.AsType[permanent](err); return !ok },
		OnRetry:   func(int, error) { s.m.retry() }}
	attempts, err := retry.Do(ctx, func() error { return s.post(ctx, body) })
	if err != nil {
		s.m.dropN(dropSendFailed, len(batch))
		s.log.Warn("events dropped: POST failed", "url", s.url, "events", len(batch), "attempts", attempts, "error", err)
	}
}

// permanent marks a failed POST that would fail the same way again.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// post makes one request; its error is permanent when a retry would fail
// the same way.
func (s *httpSink) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.EventsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.EventsUrl, bytes.NewReader(body))
	if err != nil {
		return permanent{fmt.Errorf("events request: %s", Redact(err.Error()))}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post events: %s", Redact(err.Error()))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("post events: HTTP %d", resp.StatusCode)
	default:
		return permanent{fmt.Errorf("post events: HTTP %d", resp.StatusCode)}
	}
}

// Close sends what is queued; when ctx ends first, the request in flight
// and the remaining retries are abandoned and their events dropped.
func (s *httpSink) Close(ctx context.Context) error {
	s.closed.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return ctx.Err()
	}
}
