package repoproviders

import (
	"cmp"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/binderbuild/binderbuild"
)

func TestGitLabParse(t *testing.T) {
	gl := NewGitLab(GitLabConfig{}, nil, nil, nil)
	tests := []struct {
		spec string
		want binderbuild.Repo
	}{
		{
			spec: "gitlab-org%2Fgitlab-foss/v10.0.6",
			want: binderbuild.Repo{URL: "https://gitlab.com/gitlab-org/gitlab-foss.git", Ref: "v10.0.6", BuildSlug: "gitlab_-org-gitlab_-foss"},
		},
		{
			spec: "group%2Fproject%2Frepo/main",
			want: binderbuild.Repo{URL: "https://gitlab.com/group/project/repo.git", Ref: "main", BuildSlug: "group-project-repo"},
		},
		{
			spec: "group%2Fsub-group%2Fmy.repo/feature/a%2Bb",
			want: binderbuild.Repo{URL: "https://gitlab.com/group/sub-group/my.repo.git", Ref: "feature/a+b", BuildSlug: "group-sub_-group-my.repo"},
		},
		{
			spec: "g%2Fp/x+y", // "+" stays "+", like Python's unquote
			want: binderbuild.Repo{URL: "https://gitlab.com/g/p.git", Ref: "x+y", BuildSlug: "g-p"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := gl.Parse(tc.spec)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tc.spec, err)
			}
			tc.want.Provider, tc.want.ProviderName, tc.want.Spec = "gl", "GitLab", tc.spec
			if got != tc.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.spec, got, tc.want)
			}
		})
	}
}

func TestGitLabParseErrors(t *testing.T) {
	checkParseErrors(t, NewGitLab(GitLabConfig{}, nil, nil, nil), []parseErrorCase{
		{spec: "group%2Fproject", want: `Spec is not of the form "<escaped namespace>/<ref>", provided: "group%2Fproject".`},
		{spec: "group%2Fproject/", want: "An unresolved ref is required"},
		{spec: "group%2Fproject/%", want: `Spec "group%2Fproject/%" contains an invalid percent-encoding.`},
		{spec: "group%zzproject/main", want: `Spec "group%zzproject/main" contains an invalid percent-encoding.`},
		{spec: "group%2F..%2Fadmin/main", want: `Invalid GitLab project path "group/../admin": it must be "/"-separated names of letters, digits, "-", "_" and ".".`},
		{spec: "%2Fproject/main", want: `Invalid GitLab project path "/project": it must be "/"-separated names of letters, digits, "-", "_" and ".".`},
		{spec: "group%2Fp%3Fx%3D1/main", want: `Invalid GitLab project path "group/p?x=1": it must be "/"-separated names of letters, digits, "-", "_" and ".".`},
		{spec: "a+b%2Fc/main", want: `Invalid GitLab project path "a+b/c": it must be "/"-separated names of letters, digits, "-", "_" and ".".`},
		{spec: "group%2Fproject/a..b", want: `Invalid git ref "a..b": it must not contain "..".`},
		{spec: "group%2Fproject/%2Dx", want: `Invalid git ref "-x": it must not start with "-".`},
	})
}

// TestGitLabCredentials: builds get git credentials only when configured
// as such, never the API tokens.
func TestGitLabCredentials(t *testing.T) {
	tests := []struct {
		cfg  GitLabConfig
		want string
	}{
		{cfg: GitLabConfig{}, want: ""},
		{cfg: GitLabConfig{AccessToken: "at"}, want: ""},
		{cfg: GitLabConfig{PrivateToken: "pt"}, want: ""},
		{cfg: GitLabConfig{PrivateToken: "pt", GitCredentials: `username=binderhub\npassword=gt`}, want: `username=binderhub\npassword=gt`},
	}
	for _, tc := range tests {
		repo, err := NewGitLab(tc.cfg, nil, nil, nil).Parse("g%2Fp/main")
		if err != nil {
			t.Fatal(err)
		}
		if repo.GitCredentials != tc.want {
			t.Errorf("GitCredentials with %+v = %q, want %q", tc.cfg, repo.GitCredentials, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	// Expected values are Python's urllib.parse.quote(s, safe="").
	tests := map[string]string{
		"gitlab-org/gitlab-foss": "gitlab-org%2Fgitlab-foss",
		"a b+c&d=e:f@g$h~i_j.k":  "a%20b%2Bc%26d%3De%3Af%40g%24h~i_j.k",
		"ü/€":                    "%C3%BC%2F%E2%82%AC",
		"100%":                   "100%25",
		"":                       "",
	}
	for in, want := range tests {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeGitLab implements GET /api/v4/projects/:id/repository/commits/:sha,
// with :id and :sha percent-encoded path segments. It records the raw
// request URIs.
type fakeGitLab struct {
	mu       sync.Mutex
	projects map[string]map[string]string // namespace → ref → id
	status   int
	body     string // when set, sent as the 200 body
	uris     []string
}

func (f *fakeGitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uris = append(f.uris, r.RequestURI)
	if r.Header.Get("User-Agent") != "BinderHub" {
		http.Error(w, "no user agent", http.StatusBadRequest)
		return
	}
	if f.status != 0 {
		w.WriteHeader(f.status)
		return
	}
	rawNS, rawRef, ok := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v4/projects/"), "/repository/commits/")
	ns, err1 := url.PathUnescape(rawNS)
	ref, err2 := url.PathUnescape(rawRef)
	if !ok || err1 != nil || err2 != nil || strings.Contains(rawNS, "/") || strings.Contains(rawRef, "/") {
		http.Error(w, `{"error":"404 Not Found"}`, http.StatusNotFound)
		return
	}
	refs, ok := f.projects[ns]
	if !ok {
		http.Error(w, `{"message":"404 Project Not Found"}`, http.StatusNotFound)
		return
	}
	id, ok := refs[ref]
	if !ok {
		http.Error(w, `{"message":"404 Commit Not Found"}`, http.StatusNotFound)
		return
	}
	if f.body != "" {
		fmt.Fprint(w, f.body)
		return
	}
	fmt.Fprintf(w, `{"id":%q,"short_id":%q,"title":"t"}`, id, id[:8])
}

func (f *fakeGitLab) lastURI() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.uris[len(f.uris)-1]
}

func newFakeGitLab(t *testing.T) (*fakeGitLab, *httptest.Server) {
	t.Helper()
	fake := &fakeGitLab{projects: map[string]map[string]string{
		"gitlab-org/gitlab-foss": {
			"v10.0.6":     "b3344b7f17c335a817c5d7608c5e47fd7cabc023",
			"feature/a+b": "1111111111111111111111111111111111111111",
		},
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

func TestGitLabResolve(t *testing.T) {
	fake, srv := newFakeGitLab(t)
	m, _ := newTestMetrics(t)
	gl := NewGitLab(GitLabConfig{BaseURL: srv.URL + "/", AccessToken: "a&t", PrivateToken: "p t"}, srv.Client(), m, nil)

	got, err := resolveSpec(t, gl, "gitlab-org%2Fgitlab-foss/v10.0.6")
	if err != nil {
		t.Fatal(err)
	}
	want := binderbuild.Resolved{
		ResolvedRef:  "b3344b7f17c335a817c5d7608c5e47fd7cabc023",
		ResolvedSpec: "gitlab-org%2Fgitlab-foss/b3344b7f17c335a817c5d7608c5e47fd7cabc023",
		RefURL:       srv.URL + "/gitlab-org/gitlab-foss/tree/b3344b7f17c335a817c5d7608c5e47fd7cabc023",
	}
	if got.ResolvedRef != want.ResolvedRef || got.ResolvedSpec != want.ResolvedSpec || got.RefURL != want.RefURL {
		t.Errorf("Resolve = (%q, %q, %q), want (%q, %q, %q)", got.ResolvedRef, got.ResolvedSpec, got.RefURL,
			want.ResolvedRef, want.ResolvedSpec, want.RefURL)
	}
	if got.URL != srv.URL+"/gitlab-org/gitlab-foss.git" {
		t.Errorf("URL = %q, want %q", got.URL, srv.URL+"/gitlab-org/gitlab-foss.git")
	}
	wantURI := "/api/v4/projects/gitlab-org%2Fgitlab-foss/repository/commits/v10.0.6?access_token=a%26t&private_token=p+t"
	if uri := fake.lastURI(); uri != wantURI {
		t.Errorf("request URI = %q, want %q", uri, wantURI)
	}

	got, err = resolveSpec(t, gl, "gitlab-org%2Fgitlab-foss/feature%2Fa%2Bb")
	if err != nil || got.ResolvedRef != "1111111111111111111111111111111111111111" {
		t.Errorf("Resolve(feature/a+b) = %q, %v; want 1111…", got.ResolvedRef, err)
	}
	if uri, want := fake.lastURI(), "/api/v4/projects/gitlab-org%2Fgitlab-foss/repository/commits/feature%2Fa%2Bb?"; !strings.HasPrefix(uri, want) {
		t.Errorf("request URI = %q, want prefix %q", uri, want)
	}

	for _, spec := range []string{"gitlab-org%2Fgitlab-foss/nosuchref", "nobody%2Fnothing/main"} {
		_, err := resolveSpec(t, gl, spec)
		wantNotFound(t, "Resolve("+spec+")", err)
	}
	if got := testutil.ToFloat64(m.upstream.WithLabelValues("gitlab", "ok")); got != 2 {
		t.Errorf("ok requests = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.upstream.WithLabelValues("gitlab", "not_found")); got != 2 {
		t.Errorf("not_found requests = %v, want 2", got)
	}
}

func TestGitLabAnonymousHasNoQuery(t *testing.T) {
	fake, srv := newFakeGitLab(t)
	gl := NewGitLab(GitLabConfig{BaseURL: srv.URL}, srv.Client(), nil, nil)
	if _, err := resolveSpec(t, gl, "gitlab-org%2Fgitlab-foss/v10.0.6"); err != nil {
		t.Fatal(err)
	}
	if uri, want := fake.lastURI(), "/api/v4/projects/gitlab-org%2Fgitlab-foss/repository/commits/v10.0.6"; uri != want {
		t.Errorf("request URI = %q, want %q", uri, want)
	}
}

func TestGitLabErrorsHideTokens(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		fake func(f *fakeGitLab)
		base string
		want string
	}{
		{name: "server error", fake: func(f *fakeGitLab) { f.status = http.StatusInternalServerError }, want: "unexpected response from the GitLab API (HTTP 500)"},
		{name: "unauthorized", fake: func(f *fakeGitLab) { f.status = http.StatusUnauthorized }, want: "unexpected response from the GitLab API (HTTP 401)"},
		{name: "no id", fake: func(f *fakeGitLab) { f.body = `{"message":"x"}` }, want: "the GitLab API returned no valid commit id"},
		{name: "bad id", fake: func(f *fakeGitLab) { f.body = `{"id":"--upload-pack=x"}` }, want: "the GitLab API returned no valid commit id"},
		{name: "not json", fake: func(f *fakeGitLab) { f.body = `<html>` }, want: "could not read the GitLab API response"},
		{name: "unreachable", base: closed.URL, want: "could not reach the GitLab API: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, srv := newFakeGitLab(t)
			if tc.fake != nil {
				tc.fake(fake)
			}
			base := cmp.Or(tc.base, srv.URL)
			log, logs := newTestLogger()
			gl := NewGitLab(GitLabConfig{BaseURL: base, AccessToken: "atok3n", PrivateToken: "ptok3n"}, nil, nil, log)
			_, err := resolveSpec(t, gl, "gitlab-org%2Fgitlab-foss/v10.0.6")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Resolve error = %v, want %q", err, tc.want)
			}
			for _, secret := range []string{"atok3n", "ptok3n"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("error %q or logs %q contain the token %q", err, logs, secret)
				}
			}
		})
	}
}
