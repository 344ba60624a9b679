package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/binderbuild/binderbuild/events"
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
// when the stream ends): method, path with query (credentials in URLs and
// secret query values such as build_token redacted), status, bytes,
// duration, client IP and the request id: the client's X-Request-Id, else
// a new one. It returns the id in X-Request-Id. Headers are never logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if len(id) > maxRequestIDLen {
			id = id[:maxRequestIDLen]
		}
		if id == "" {
			id = s.requestIDs.next()
		}
		w.Header().Set(requestIDHeader, id)
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		path := r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			path += "?" + r.URL.RawQuery
		}
		client := ""
		if ip := s.cfg.clientIP(r); ip.IsValid() {
			client = ip.String()
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", events.Redact(path)),
			slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("client_ip", client),
			slog.String("request_id", id),
		)
	})
}
