package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/binderbuild/binderbuild/internal/ttl"
)

// healthCacheTTL is the default of Config.HealthCacheTTL.
const healthCacheTTL = 5 * time.Second

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type versions struct {
	BuilderInfo struct {
		BuildImage string `json:"build_image"`
	} `json:"builder_info"`
	BinderHub   string `json:"binderhub"`
	Builder     string `json:"builder"`
	BinderBuild string `json:"binderbuild"`
	Go          string `json:"go"`
}

func (s *Server) handleVersions(w http.ResponseWriter, _ *http.Request) {
	var v versions
	v.BuilderInfo.BuildImage = s.deps.BuildImage
	v.BinderHub, v.BinderBuild = s.deps.Version, s.deps.Version
	v.Builder = s.deps.BuildImage
	v.Go = runtime.Version()
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleRepoProviders(w http.ResponseWriter, _ *http.Request) {
	list := make([]any, 0, len(s.deps.Providers))
	for _, p := range s.deps.Providers {
		list = append(list, p.Display())
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.health.get(r.Context())
	status := http.StatusOK
	if !rep.OK {
		status = http.StatusServiceUnavailable
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	if !s.mayInspect(r) {
		rep.Checks = nil // who may not see the details still sees ok
	}
	writeJSON(w, status, rep)
}

// mayInspect reports whether r may see /health's details and /metrics:
// anyone unless a metrics token is set or authentication is on; then only
// with "Authorization: Bearer <metrics token>".
func (s *Server) mayInspect(r *http.Request) bool {
	if s.cfg.MetricsToken == "" {
		return s.deps.Auth == nil
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.MetricsToken)) == 1
}

// protectMetrics serves /metrics only to those who may inspect the service.
func (s *Server) protectMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.MetricsToken != "" && !s.mayInspect(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="binderbuild metrics"`)
			http.Error(w, "metrics need BINDERBUILD_METRICS_TOKEN as a bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type healthReport struct {
	OK     bool          `json:"ok"`
	Checks []checkResult `json:"checks,omitempty"`
}

type checkResult struct {
	Service   string  `json:"service"`
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
	Optional  bool    `json:"_ignore_failure,omitempty"`
}

// healthCache runs the checks at most once per maxAge, with one run in
// flight.
type healthCache struct {
	checks []HealthCheck
	maxAge time.Duration
	redact func(string) string // errors may quote URLs with credentials
	group  singleflight.Group
	// last holds the latest report, under the one key struct{}{}, for
	// maxAge.
	last *ttl.Cache[struct{}, healthReport]
}

// newHealthCache reuses reports for maxAge (healthCacheTTL when 0 or less)
// on the clock now (nil: time.Now).
func newHealthCache(checks []HealthCheck, maxAge time.Duration, redact func(string) string, now func() time.Time) *healthCache {
	if maxAge <= 0 {
		maxAge = healthCacheTTL
	}
	return &healthCache{checks: checks, maxAge: maxAge, redact: redact, last: ttl.New[struct{}, healthReport](1, now)}
}

func (h *healthCache) get(ctx context.Context) healthReport {
	if rep, ok := h.last.Get(struct{}{}); ok {
		return rep
	}
	v, _, _ := h.group.Do("health", func() (any, error) {
		rep := h.run(context.WithoutCancel(ctx))
		h.last.Add(struct{}{}, rep, h.maxAge)
		return rep, nil
	})
	return v.(healthReport)
}

// run checks every dependency concurrently, each bounded by a timeout.
func (h *healthCache) run(ctx context.Context) healthReport {
	rep := healthReport{OK: true, Checks: make([]checkResult, len(h.checks))}
	var wg sync.WaitGroup
	for i, c := range h.checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			start := time.Now()
			err := c.Check(ctx)
			res := checkResult{Service: c.Service, OK: err == nil, Optional: c.Optional,
				LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				res.Error = h.redact(err.Error())
			}
			rep.Checks[i] = res
		})
	}
	wg.Wait()
	for _, c := range rep.Checks {
		if !c.OK && !c.Optional {
			rep.OK = false
		}
	}
	return rep
}
