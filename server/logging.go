package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/binderbuild/binderbuild/events"
)

// maxRequestIDLen bounds a client-chosen X-Request-Id in logs.
const maxRequestIDLen = 128

// logRequests logs one line per request when it ends (for event streams:
// when the stream ends): method, path with query (credentials in URLs and
// secret query values such as build_token redacted), status, bytes,
// duration, client IP and the request id of middleware.RequestID, which it
// also returns in X-Request-Id. Headers are never logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := middleware.GetReqID(r.Context())
		if len(id) > maxRequestIDLen {
			id = id[:maxRequestIDLen]
		}
		if id != "" {
			w.Header().Set(middleware.RequestIDHeader, id)
		}
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
