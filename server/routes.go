package server

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// ServeHTTP routes a request. /build requests, the hot path, go through
// the same middleware as the router's routes but skip the router itself,
// whose route context and path values cost three allocations and a
// second routing pass per request: they need only the provider.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.buildProvider(r); ok {
		s.build.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// buildProvider returns the provider of a {base}build/{provider}[/...]
// path. Paths that need the router's care (an escaped or empty provider)
// are left to it.
func (s *Server) buildProvider(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), s.cfg.BaseURL+"build/")
	if !ok {
		return "", false
	}
	provider, _, _ := strings.Cut(rest, "/")
	return provider, provider != "" && !strings.Contains(provider, "%")
}

// buildRoute is the /build handler of ServeHTTP, behind the router's
// middleware.
func (s *Server) buildRoute() http.Handler {
	return s.logRequests(s.access(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		provider, _ := s.buildProvider(r)
		s.serveBuild(w, r, provider)
	})))
}

func (s *Server) router() chi.Router {
	r := chi.NewRouter()
	// One log line per request, with its id (logging.go).
	r.Use(s.logRequests)
	r.Route(s.cfg.BaseURL, func(r chi.Router) {
		// CORS, the preflight and ban_networks (access.go).
		r.Use(s.access)
		// Event streams take any method: upstream answers a wrong one with a
		// failed event, which EventSource clients can show.
		r.HandleFunc("/build/{provider}", s.handleBuild)
		r.HandleFunc("/build/{provider}/*", s.handleBuild)
		if s.cfg.CanaryToken != "" {
			r.HandleFunc("/canary/{provider}/*", s.handleCanary) // canary.go
		}
		r.Get("/versions", s.handleVersions)
		r.Get("/health", s.handleHealth)
		r.Head("/health", s.handleHealth)
		r.Get("/api/repoproviders", s.handleRepoProviders)
		if s.deps.MetricsHandler != nil {
			r.Method(http.MethodGet, "/metrics", s.protectMetrics(s.deps.MetricsHandler))
		}
		if s.deps.UI != nil {
			// The build page: always under ui/, at the root too outside
			// API-only mode.
			r.Handle("/ui", s.deps.UI)
			r.Handle("/ui/*", s.deps.UI)
		}
		// The build page at the root, in API-only mode too: a new user
		// opening the service's URL finds it. JupyterHub counts a service
		// as up when it answers below 500.
		if s.deps.UI != nil {
			r.Handle("/", s.deps.UI)
		} else {
			r.Get("/", http.NotFound)
		}
		// The pages of launch mode (launch.go): launch links, badges.
		if s.deps.UI != nil && s.deps.Launcher != nil {
			r.Handle("/v2/*", s.deps.UI)
			r.Handle("/badge.svg", s.deps.UI)
			r.Handle("/badge_logo.svg", s.deps.UI)
		}
	})
	return r
}
