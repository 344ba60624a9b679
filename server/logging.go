package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/binderbuild/binderbuild/internal/accesslog"
)

// maxRequestIDLen bounds a client-chosen X-Request-Id in logs.
const maxRequestIDLen = 128

const requestIDHeader = "X-Request-Id"

// requestIDs makes request ids: a random prefix per process and a count,
// so that ids of several replicas do not collide.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (ids *requestIDs) next() string {
	var buf [40]byte
	out := append(buf[:0], ids.prefix...)
	return string(strconv.AppendUint(out, ids.n.Add(1), 10))
}

// logRequests logs one line per request when it ends (for event streams:
// when the stream ends, also for a parked stream whose handler returned
// long before): method, path with query (credentials in URLs and secret
// query values such as build_token redacted), status, bytes, duration,
// client IP and the request id: the client's X-Request-Id, else a new one.
// It returns the id in X-Request-Id. Headers are never logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if len(id) > maxRequestIDLen {
			id = id[:maxRequestIDLen]
		}
		generated := id == ""
		if generated {
			id = s.requestIDs.next()
		}
		aw := &accessWriter{ResponseWriter: w, srv: s, r: r, start: start, id: id, ownID: generated}
		aw.idHeader[0] = id
		w.Header()[requestIDHeader] = aw.idHeader[:] // one allocation for both
		next.ServeHTTP(aw, r)
		if !aw.later {
			aw.logLine(aw.status, aw.written)
		}
	})
}

// accessWriter records a response's status and size for its access log
// line. A stream that takes the connection over asks for the line to wait
// until it ends (EndLater, the streamEnd upgrade).
type accessWriter struct {
	http.ResponseWriter
	srv      *Server
	r        *http.Request
	start    time.Time
	id       string
	idHeader [1]string // the X-Request-Id header's value
	ownID    bool      // id was made here, not sent by the client: nothing to redact
	status   int       // the first status written, 0 before
	written  int64     // bytes of the body
	later    bool      // the line is written when the stream ends
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, take
// over, deadlines).
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// EndLater defers the log line until the stream taken over from w ends:
// call the result with the bytes of the body sent since.
func (w *accessWriter) EndLater() func(written int64) {
	w.later = true
	return func(written int64) { w.logLine(http.StatusOK, w.written+written) }
}

// logLine writes the request's access line: status (0: 200) and the bytes
// of the body.
func (w *accessWriter) logLine(status int, written int64) {
	s, r := w.srv, w.r
	if !s.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	end := time.Now()
	line := accesslog.Line{
		Method:   r.Method,
		Path:     s.deps.Redactor.String(requestPath(r)),
		Status:   status,
		Bytes:    int(written),
		Duration: end.Sub(w.start),
		ID:       w.id,
	}
	if !w.ownID {
		line.ID = s.deps.Redactor.String(w.id)
	}
	if line.Status == 0 {
		line.Status = http.StatusOK
	}
	if ip := s.cfg.clientIP(r); ip.IsValid() {
		line.Client = ip
	}
	s.logAccess(r, end, line)
}

func requestPath(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return r.URL.EscapedPath()
	}
	return r.URL.EscapedPath() + "?" + r.URL.RawQuery
}

// logAccess writes l to Deps.AccessLog when set, else to the log.
func (s *Server) logAccess(r *http.Request, now time.Time, l accesslog.Line) {
	if s.deps.AccessLog == nil {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, accesslog.Message, l.Attrs()...)
		return
	}
	bp := accessBuffers.Get().(*[]byte)
	*bp = l.AppendJSON((*bp)[:0], now)
	_, _ = s.deps.AccessLog.Write(*bp)
	accessBuffers.Put(bp)
}

var accessBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
