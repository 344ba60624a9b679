package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) router() chi.Router {
	r := chi.NewRouter()
	r.Route(s.cfg.BaseURL, func(r chi.Router) {
		// Event streams take any method: upstream answers a wrong one with a
		// failed event, which EventSource clients can show.
		r.HandleFunc("/build/{provider}", s.handleBuild)
		r.HandleFunc("/build/{provider}/*", s.handleBuild)
		r.Get("/versions", s.handleVersions)
		r.Get("/health", s.handleHealth)
		r.Head("/health", s.handleHealth)
		r.Get("/api/repoproviders", s.handleRepoProviders)
		if s.deps.Metrics != nil {
			r.Method(http.MethodGet, "/metrics", s.deps.Metrics)
		}
		// JupyterHub counts a service as up when it answers below 500.
		r.Get("/", http.NotFound)
	})
	return r
}
