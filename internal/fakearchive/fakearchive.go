// Package fakearchive runs in-process fakes of the research archive APIs
// the repository providers use (doi.org's redirects, Zenodo, Figshare, a
// Dataverse installation, a CKAN site, GitHub's gists API and Software
// Heritage), for tests of the wired service and of the web page. The
// answers follow the services' documented formats, with the values of
// upstream BinderHub's recorded answers.
package fakearchive

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// Values the fakes serve.
const (
	// GistID is a public gist whose newest version is GistVersion.
	GistID      = "8a658f7f63b13768d1e75fa2464f5092"
	GistVersion = "7daa381aae8409bfe28193e2ed8f767c26371237"
	// SWHDir is a directory id; SWHSnapshot's HEAD is revision SWHRevision.
	SWHDir      = "d198bc9d7a6bcf6db04f476d29314f157507d505"
	SWHSnapshot = "1a8893e6a86f444e8be8e7bda6cb34fb1735a00e"
	SWHRevision = "8a1c3e4c0a1ac1a6c1c1dd0f7b4b3e9f2b4d0f51"
)

// Server is the DOI resolver and, on another loopback server, every
// archive. Requests other than the archives' go to GitHub (may be nil).
type Server struct {
	// ResolverURL is the DOI resolver (use as BINDERBUILD_DOI_RESOLVER_URL).
	ResolverURL string
	// URL is the archives' server: Zenodo at URL+"/zenodo", Figshare's API
	// at URL+"/figshare", Software Heritage's API at URL+"/swh/api/1", the
	// GitHub API (gists) at URL, CKAN datasets at URL+"/ckan/dataset/<id>",
	// and the Dataverse installation at URL.
	URL string
	// Host is URL's host:port, to allow for CKAN and Dataverse.
	Host   string
	github http.Handler
	calls  atomic.Int64
}

// Start starts the fakes until the test ends.
func Start(t testing.TB, github http.Handler) *Server {
	s := &Server{github: github}
	archive := httptest.NewServer(http.HandlerFunc(s.serveArchive))
	t.Cleanup(archive.Close)
	resolver := httptest.NewServer(http.HandlerFunc(s.serveResolver))
	t.Cleanup(resolver.Close)
	s.URL, s.ResolverURL, s.Host = archive.URL, resolver.URL, strings.TrimPrefix(archive.URL, "http://")
	return s
}

// Calls returns the number of requests the fakes answered.
func (s *Server) Calls() int64 { return s.calls.Load() }

// serveResolver redirects DOIs like https://doi.org/<doi>; unknown DOIs
// are 404, as there.
func (s *Server) serveResolver(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	targets := map[string]string{
		"/10.5281/zenodo.3242074":         s.URL + "/zenodo/records/3242074",
		"/10.5281/zenodo.3242073":         s.URL + "/zenodo/records/3242074", // concept DOI: the newest version
		"/10.5281/zenodo.4290000":         s.URL + "/zenodo/records/4290000",
		"/10.6084/m9.figshare.9782777.v1": "https://figshare.com/articles/code/binder/9782777/1",
		"/10.6084/m9.figshare.9782777":    "https://figshare.com/articles/code/binder/9782777",
		"/10.7910/DVN/TJCLKP":             s.URL + "/citation?persistentId=doi:10.7910/DVN/TJCLKP",
		"/10.7910/DVN/PRIVATE":            "http://127.0.0.1:9/citation?persistentId=doi:10.7910/DVN/PRIVATE",
	}
	if to := targets[r.URL.Path]; to != "" {
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	http.Error(w, `{"responseCode": 100, "handle": "not found"}`, http.StatusNotFound)
}

func (s *Server) serveArchive(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	q := r.URL.Query()
	switch p := r.URL.Path; {
	case p == "/zenodo/api/records/3242074":
		fmt.Fprint(w, `{"id": 3242074, "doi": "10.5281/zenodo.3242074", "conceptrecid": "3242073"}`)
	case p == "/zenodo/api/records/4290000":
		w.Header().Set("Retry-After", "60")
		http.Error(w, `{"status": 429, "message": "Too many requests"}`, http.StatusTooManyRequests)
	case p == "/figshare/articles/9782777/versions":
		fmt.Fprint(w, `[{"version": 1}, {"version": 3}, {"version": 2}]`)
	case p == "/api/datasets/:persistentId" && q.Get("persistentId") == "doi:10.7910/DVN/TJCLKP":
		fmt.Fprint(w, `{"status": "OK", "data": {"id": 3035124, "identifier": "DVN/TJCLKP", "authority": "10.7910",`+
			`"persistentUrl": "https://doi.org/10.7910/DVN/TJCLKP", "latestVersion": {"versionNumber": 3, "versionMinorNumber": 0}}}`)
	case p == "/ckan/api/3/action/package_show" && q.Get("id") == "my-sample-dataset-001":
		fmt.Fprint(w, `{"success": true, "result": {"metadata_modified": "2024-04-02T02:10:31.123456"}}`)
	case p == "/gists/"+GistID:
		fmt.Fprintf(w, `{"id": %q, "public": true, "history": [{"version": %q}]}`, GistID, GistVersion)
	case p == "/swh/api/1/snapshot/"+SWHSnapshot+"/":
		fmt.Fprintf(w, `{"id": %q, "branches": {"HEAD": {"target_type": "alias", "target": "refs/heads/main"},`+
			`"refs/heads/main": {"target_type": "revision", "target": %q}}}`, SWHSnapshot, SWHRevision)
	case s.github != nil && strings.HasPrefix(p, "/repos/"):
		s.github.ServeHTTP(w, r)
	default:
		http.Error(w, `{"message": "Not Found"}`, http.StatusNotFound)
	}
}
