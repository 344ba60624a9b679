package repoproviders

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Values of upstream's recorded answers (binderhub/tests/http-record.*.json
// and test_repoproviders.py).
const (
	gistID        = "8a658f7f63b13768d1e75fa2464f5092"
	gistVersion   = "7daa381aae8409bfe28193e2ed8f767c26371237"
	gistOlder     = "a0ac2a1a7a5e9d2d4c5f1d8e4b3a2c1d0e9f8a7b"
	secretGistID  = "bd01411ea4bf4eb8135893ef237398ba"
	hydroShareRes = "142c59757ed54de1816777828c9716e7"
	swhSnapshot   = "1a8893e6a86f444e8be8e7bda6cb34fb1735a00e"
	swhRevision   = "8a1c3e4c0a1ac1a6c1c1dd0f7b4b3e9f2b4d0f51"
	swhRelease    = "208f61cc7a5dbc9879ae6e5c2f95891e270f09ef"
	swhDirectory  = "d198bc9d7a6bcf6db04f476d29314f157507d505"
)

// fakeArchives serves documented subsets of the APIs of doi.org, Zenodo,
// Figshare, HydroShare, a Dataverse installation, a CKAN site, GitHub's
// gists and Software Heritage, each on its own loopback server. Every
// server counts its requests and records the Authorization headers it saw.
type fakeArchives struct {
	doi, zenodo, figshare, hydroshare, dataverse, ckan, github, swh *fakeServer
}

type fakeServer struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	auth  []string // Authorization and X-Dataverse-Key headers seen
}

func newFakeServer(t *testing.T, h func(f *fakeServer, w http.ResponseWriter, r *http.Request)) *fakeServer {
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		f.mu.Lock()
		if a := r.Header.Get("Authorization") + r.Header.Get("X-Dataverse-Key"); a != "" {
			f.auth = append(f.auth, a)
		}
		f.mu.Unlock()
		if r.Header.Get("User-Agent") != "BinderHub" {
			http.Error(w, "no User-Agent", http.StatusBadRequest)
			return
		}
		h(f, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) seenAuth() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...)
}

func newFakeArchives(t *testing.T) *fakeArchives {
	a := &fakeArchives{}
	a.zenodo = newFakeServer(t, a.serveZenodo)
	a.figshare = newFakeServer(t, a.serveFigshare)
	a.hydroshare = newFakeServer(t, a.serveHydroShare)
	a.dataverse = newFakeServer(t, a.serveDataverse)
	a.ckan = newFakeServer(t, a.serveCKAN)
	a.github = newFakeServer(t, a.serveGitHub)
	a.swh = newFakeServer(t, a.serveSWH)
	a.doi = newFakeServer(t, a.serveDOI)
	return a
}

// config points every provider at the fakes. The CKAN and Dataverse fakes
// listen on loopback, so they are allowed explicitly.
func (a *fakeArchives) config() ArchiveConfig {
	return ArchiveConfig{
		DOIResolverURL:     a.doi.URL,
		ZenodoURL:          a.zenodo.URL,
		FigshareAPIURL:     a.figshare.URL + "/v2",
		HydroShareURL:      a.hydroshare.URL,
		SWHAPIURL:          a.swh.URL + "/api/1",
		DataverseTokenHost: strings.TrimPrefix(a.dataverse.URL, "http://"),
		AllowedHosts:       []string{strings.TrimPrefix(a.dataverse.URL, "http://"), strings.TrimPrefix(a.ckan.URL, "http://")},
	}
}

// serveDOI redirects like https://doi.org/<doi>: 302 to the landing page,
// 404 for unknown DOIs.
func (a *fakeArchives) serveDOI(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	targets := map[string]string{
		"/10.5281/zenodo.3242074":                      a.zenodo.URL + "/records/3242074",
		"/10.5281/zenodo.3242073":                      a.zenodo.URL + "/doi/10.5281/zenodo.3242073", // concept DOI
		"/10.5281/zenodo.1111111":                      a.zenodo.URL + "/records/1111111",            // deleted record
		"/10.5281/zenodo.6666666":                      "https://evil.example/records/6666666",
		"/10.5281/zenodo.7777777":                      "/10.5281/zenodo.7777777", // loops on the resolver
		"/10.6084/m9.figshare.9782777.v1":              "https://figshare.com/articles/code/binder/9782777/1",
		"/10.6084/m9.figshare.9782777":                 "https://figshare.com/articles/code/binder/9782777",
		"/10.6084/m9.figshare.8888888":                 "https://figshare.com/articles/code/empty/8888888",
		"/10.6084/figshare":                            "https://figshare.com/",
		"/10.7910/DVN/TJCLKP":                          a.dataverse.URL + "/citation?persistentId=doi:10.7910/DVN/TJCLKP",
		"/10.7910/DVN/PRIVATE":                         "http://127.0.0.1:9/citation?persistentId=doi:10.7910/DVN/PRIVATE",
		"/10.7910/DVN/LOCALHOST":                       "http://localhost/citation?persistentId=doi:10.7910/DVN/LOCALHOST",
		"/10.7910/DVN/METADATA":                        "http://169.254.169.254/latest/meta-data",
		"/10.7910/DVN/NOTDATAVERSE":                    a.dataverse.URL + "/citation?persistentId=doi:10.7910/DVN/NOTDATAVERSE",
		"/10.5281/zenodo.4290000":                      a.zenodo.URL + "/records/4290000", // rate limited
		"/10.5281/zenodo.5030000":                      a.zenodo.URL + "/records/5030000", // unavailable
		"/10.4211/hs.b8f6eae9d89241cf8b5904033460af61": a.hydroshare.URL + "/resource/b8f6eae9d89241cf8b5904033460af61",
	}
	switch p := r.URL.EscapedPath(); {
	case strings.Contains(r.Header.Get("Accept"), "json"):
		// content negotiation: metadata instead of a redirect
		fmt.Fprint(w, `{"DOI": "10.5281/zenodo.3242074", "type": "software"}`)
	case p == "/10.9999/ratelimited":
		w.Header().Set("Retry-After", "120")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case p == "/10.9999/down":
		http.Error(w, "down", http.StatusServiceUnavailable)
	case targets[p] != "":
		http.Redirect(w, r, targets[p], http.StatusFound)
	default:
		http.Error(w, `{"responseCode": 100}`, http.StatusNotFound)
	}
}

func (a *fakeArchives) serveZenodo(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/doi/10.5281/zenodo.3242073":
		http.Redirect(w, r, "/records/3242074", http.StatusFound)
	case "/api/records/3242074":
		fmt.Fprint(w, `{"id": 3242074, "doi": "10.5281/zenodo.3242074", "conceptrecid": "3242073"}`)
	case "/api/records/4290000":
		w.Header().Set("Retry-After", "30")
		http.Error(w, `{"status": 429}`, http.StatusTooManyRequests)
	case "/api/records/5030000":
		http.Error(w, "", http.StatusBadGateway)
	case "/api/records/1111111":
		http.Error(w, `{"status": 410, "message": "The record has been deleted."}`, http.StatusGone)
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeArchives) serveFigshare(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v2/articles/9782777/versions":
		fmt.Fprint(w, `[{"version": 1, "url": "x"}, {"version": 3, "url": "y"}, {"version": 2, "url": "z"}]`)
	case "/v2/articles/8888888/versions":
		fmt.Fprint(w, `[]`)
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeArchives) serveHydroShare(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/hsapi/resource/" + hydroShareRes + "/scimeta/elements",
		"/hsapi/resource/b8f6eae9d89241cf8b5904033460af61/scimeta/elements":
		fmt.Fprint(w, `{"title": "t", "dates": [{"type": "created", "start_date": "2018-01-01T00:00:00.000000Z"},`+
			`{"type": "modified", "start_date": "2019-06-21T15:32:04.285547Z"}]}`)
	case "/hsapi/resource/ffffffffffffffffffffffffffffffff/scimeta/elements":
		fmt.Fprint(w, strings.Repeat(" ", 9<<20)) // larger than any answer may be
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeArchives) serveDataverse(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/datasets/:persistentId" {
		http.NotFound(w, r)
		return
	}
	switch r.URL.Query().Get("persistentId") {
	case "doi:10.7910/DVN/TJCLKP":
		fmt.Fprint(w, `{"status":"OK","data":{"id":3035124,"identifier":"DVN/TJCLKP","persistentUrl":"https://doi.org/10.7910/DVN/TJCLKP",`+
			`"protocol":"doi","authority":"10.7910","separator":"/","publisher":"Harvard Dataverse",`+
			`"latestVersion":{"id":337724,"datasetId":3035124,"versionNumber":3,"versionMinorNumber":0,"versionState":"RELEASED"}}}`)
	default:
		fmt.Fprint(w, `{"status":"ERROR","message":"Dataset with Persistent ID not found"}`)
	}
}

func (a *fakeArchives) serveCKAN(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case r.URL.Path == "/api/3/action/package_show" && q.Get("id") == "my-sample-dataset-001":
		fmt.Fprint(w, `{"success": true, "result": {"name": "my-sample-dataset-001", "metadata_modified": "2024-04-02T02:10:31.123456"}}`)
	case r.URL.Path == "/prefix/api/3/action/package_show" && q.Get("id") == "prefixed":
		fmt.Fprint(w, `{"success": true, "result": {"metadata_modified": "2024-04-02T02:10:31.000001"}}`)
	case r.URL.Path == "/api/3/action/activity_data_show" && q.Get("id") == "93df7fd0-0edc-4ebf-bac7-fbf5f78de90b" && q.Get("object_type") == "package":
		fmt.Fprint(w, `{"success": true, "result": {"metadata_modified": "2024-04-02T02:10:31.858466"}}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"success": false, "error": {"message": "Not found", "__type": "Not Found Error"}}`)
	}
}

func (a *fakeArchives) serveGitHub(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/gists/" + gistID:
		w.Header().Set("X-Ratelimit-Remaining", "4999")
		w.Header().Set("X-Ratelimit-Limit", "5000")
		fmt.Fprintf(w, `{"id": %q, "public": true, "history": [{"version": %q}, {"version": %q}]}`, gistID, gistVersion, gistOlder)
	case "/gists/" + secretGistID:
		fmt.Fprintf(w, `{"id": %q, "public": false, "history": [{"version": %q}]}`, secretGistID, gistVersion)
	case "/gists/ratelimited":
		w.Header().Set("X-Ratelimit-Remaining", "0")
		w.Header().Set("X-Ratelimit-Limit", "60")
		w.Header().Set("X-Ratelimit-Reset", "0")
		http.Error(w, `{"message": "API rate limit exceeded"}`, http.StatusForbidden)
	default:
		http.Error(w, `{"message": "Not Found"}`, http.StatusNotFound)
	}
}

func (a *fakeArchives) serveSWH(_ *fakeServer, w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/1/snapshot/" + swhSnapshot + "/":
		fmt.Fprintf(w, `{"id": %q, "branches": {"HEAD": {"target_type": "alias", "target": "refs/heads/main"},`+
			`"refs/heads/main": {"target_type": "revision", "target": %q}}, "next_branch": null}`, swhSnapshot, swhRevision)
	case "/api/1/release/" + swhRelease + "/":
		fmt.Fprintf(w, `{"id": %q, "name": "v1.0", "target_type": "revision", "target": %q}`, swhRelease, swhRevision)
	case "/api/1/origin/https://github.com/binder-examples/requirements/visit/latest/":
		if r.URL.Query().Get("require_snapshot") != "true" {
			http.Error(w, "want require_snapshot", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"origin": "https://github.com/binder-examples/requirements", "visit": 7, "snapshot": %q}`, swhSnapshot)
	case "/api/1/origin/https://github.com/binder-examples/requirements/visit/3/":
		fmt.Fprint(w, `{"visit": 3, "snapshot": null, "status": "partial"}`)
	case "/api/1/snapshot/ffffffffffffffffffffffffffffffffffffffff/":
		http.Error(w, `{"exception": "RateLimited"}`, http.StatusTooManyRequests)
	default:
		http.Error(w, `{"exception": "NotFoundExc"}`, http.StatusNotFound)
	}
}
