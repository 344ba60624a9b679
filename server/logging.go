package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
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
	line := accessLine{
		method:   r.Method,
		path:     s.deps.Redactor.String(requestPath(r)),
		status:   status,
		bytes:    int(written),
		duration: end.Sub(w.start),
		id:       w.id,
	}
	if !w.ownID {
		line.id = s.deps.Redactor.String(w.id)
	}
	if line.status == 0 {
		line.status = http.StatusOK
	}
	if ip := s.cfg.clientIP(r); ip.IsValid() {
		line.client = ip
	}
	s.logAccess(r, end, line)
}

func requestPath(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return r.URL.EscapedPath()
	}
	return r.URL.EscapedPath() + "?" + r.URL.RawQuery
}

// accessLine is one request of the access log, already redacted.
type accessLine struct {
	method, path string
	status       int
	bytes        int
	duration     time.Duration
	client       netip.Addr
	id           string
}

func (l accessLine) durationMS() float64 { return float64(l.duration.Microseconds()) / 1000 }

func (l accessLine) clientIP() string {
	if !l.client.IsValid() {
		return ""
	}
	return l.client.String()
}

// attrs are l's fields as the logger writes them; appendJSON writes the
// same line without the logger.
func (l accessLine) attrs() []slog.Attr {
	return []slog.Attr{
		slog.String("method", l.method),
		slog.String("path", l.path),
		slog.Int("status", l.status),
		slog.Int("bytes", l.bytes),
		slog.Float64("duration_ms", l.durationMS()),
		slog.String("client_ip", l.clientIP()),
		slog.String("request_id", l.id),
	}
}

// logAccess writes l to Deps.AccessLog when set, else to the log.
func (s *Server) logAccess(r *http.Request, now time.Time, l accessLine) {
	if s.deps.AccessLog == nil {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", l.attrs()...)
		return
	}
	bp := accessBuffers.Get().(*[]byte)
	*bp = l.appendJSON((*bp)[:0], now)
	_, _ = s.deps.AccessLog.Write(*bp)
	accessBuffers.Put(bp)
}

var accessBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendJSON appends l as slog's JSON handler writes the record of
// logAccess, with time t, and a newline: one append per field instead of a
// record, its attributes and a handler chain per request.
func (l accessLine) appendJSON(b []byte, t time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":`...)
	b = appendJSONString(b, l.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, l.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(l.bytes), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, l.durationMS(), 'f', -1, 64)
	b = append(b, `,"client_ip":"`...)
	if l.client.IsValid() {
		b = l.client.AppendTo(b)
	}
	b = append(b, `","request_id":`...)
	b = appendJSONString(b, l.id)
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string the way slog's JSON handler
// does: UTF-8 kept, control characters, quotes, backslashes, U+2028 and
// U+2029 escaped, invalid bytes as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
