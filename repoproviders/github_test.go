package repoproviders

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/binderbuild/binderbuild"
)

func TestGitHubParse(t *testing.T) {
	gh := NewGitHub(GitHubConfig{}, nil, nil, nil)
	tests := []struct {
		spec            string
		user, repo, ref string
	}{
		{spec: "user/repo/master", user: "user", repo: "repo", ref: "master"},
		{spec: "user/repo/hotfix/squash-bug", user: "user", repo: "repo", ref: "hotfix/squash-bug"},
		{spec: "user/repo/feature/save_world", user: "user", repo: "repo", ref: "feature/save_world"},
		{spec: "a/long/specification/with/many/slashes/to/split/on", user: "a", repo: "long", ref: "specification/with/many/slashes/to/split/on"},
		{spec: "jupyterhub/zero-to-jupyterhub-k8s.git/0.9.1", user: "jupyterhub", repo: "zero-to-jupyterhub-k8s", ref: "0.9.1"},
		{spec: "org/repo/feature%2Fx", user: "org", repo: "repo", ref: "feature/x"},
		{spec: "org/repo/f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603", user: "org", repo: "repo", ref: "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := gh.Parse(tc.spec)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tc.spec, err)
			}
			want := binderbuild.Repo{
				Provider:     "gh",
				ProviderName: "GitHub",
				Spec:         tc.spec,
				URL:          "https://github.com/" + tc.user + "/" + tc.repo,
				Ref:          tc.ref,
				BuildSlug:    tc.user + "-" + tc.repo,
			}
			if got != want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.spec, got, want)
			}
		})
	}
}

func TestGitHubParseErrors(t *testing.T) {
	checkParseErrors(t, NewGitHub(GitHubConfig{}, nil, nil, nil), []parseErrorCase{
		{spec: "nothing_to_split", want: `Spec is not of the form "user/repo/ref", provided: "nothing_to_split".`},
		{spec: "short/HEAD", want: `Spec is not of the form "user/repo/ref", provided: "short/HEAD".`},
		{spec: "short/main", want: `Spec is not of the form "user/repo/ref", provided: "short/main".`},
		{spec: "short/master", want: `Spec is not of the form "user/repo/ref", provided: "short/master".`},
		{spec: "short/suggestion", want: `Spec is not of the form "user/repo/ref", provided: "short/suggestion". Did you mean "short/suggestion/HEAD"?`},
		{spec: "", want: `Spec is not of the form "user/repo/ref", provided: "".`},
		{spec: "../../user/HEAD", want: `Invalid GitHub repository "../.." in spec "../../user/HEAD": names may only contain letters, digits, "-", "_" and ".".`},
		{spec: "u/.git/HEAD", want: `Invalid GitHub repository "u/" in spec "u/.git/HEAD": names may only contain letters, digits, "-", "_" and ".".`},
		{spec: "u%3F/r/HEAD", want: `Invalid GitHub repository "u%3F/r" in spec "u%3F/r/HEAD": names may only contain letters, digits, "-", "_" and ".".`},
		{spec: "u/r/a/../../../user", want: `Invalid git ref "a/../../../user": it must not contain "..".`},
		{spec: "u/r/%2E%2E/x", want: `Invalid git ref "../x": it must not contain "..".`},
		{spec: "u/r/-x", want: `Invalid git ref "-x": it must not start with "-".`},
		{spec: "u/r/HEAD~1", want: `Invalid git ref "HEAD~1": it must not contain "~".`},
		{spec: "u/r/a%0Ab", want: `Invalid git ref "a\nb": it must not contain control characters.`},
		{spec: "u/r/100%", want: `Spec "u/r/100%" contains an invalid percent-encoding.`},
	})
}

// TestGitHubCredentials: builds get git credentials only when configured
// as such; the API token is for API calls only (upstream derives
// git_credentials from it).
func TestGitHubCredentials(t *testing.T) {
	tests := []struct {
		name string
		cfg  GitHubConfig
		want string
	}{
		{name: "none", cfg: GitHubConfig{}, want: ""},
		{name: "API token only", cfg: GitHubConfig{AccessToken: "tok"}, want: ""},
		{name: "token and client id", cfg: GitHubConfig{AccessToken: "tok", ClientID: "id", ClientSecret: "s"}, want: ""},
		{name: "git credentials", cfg: GitHubConfig{AccessToken: "tok", GitCredentials: `username=git-tok\npassword=x-oauth-basic`},
			want: `username=git-tok\npassword=x-oauth-basic`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo, err := NewGitHub(tc.cfg, nil, nil, nil).Parse("u/r/HEAD")
			if err != nil {
				t.Fatal(err)
			}
			if repo.GitCredentials != tc.want {
				t.Errorf("GitCredentials = %q, want %q", repo.GitCredentials, tc.want)
			}
		})
	}
}

// fakeGitHub implements GET /repos/{user}/{repo}/commits/{ref} like the
// GitHub API: 200 with sha and ETag, 304 on a matching If-None-Match (not
// counted against the rate limit), 404 for unknown repos, 422 for unknown
// refs, 403 once the rate limit is used up. It records every request.
type fakeGitHub struct {
	mu        sync.Mutex
	repos     map[string]map[string]string // "user/repo" → ref → sha
	status    int                          // when non-zero, answer every request with it
	noSHA     bool                         // answer 200 without "sha"
	limit     int
	remaining int
	reset     time.Time
	requests  []*http.Request
}

func newFakeGitHub() *fakeGitHub {
	return &fakeGitHub{
		repos: map[string]map[string]string{
			"jupyterhub/zero-to-jupyterhub-k8s": {
				"0.9.1":     "38e50c71130fcf56655685f0992f4f125bef3879",
				"feature/x": "1111111111111111111111111111111111111111",
				"f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603": "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
			},
		},
		limit:     5000,
		remaining: 5000,
		reset:     time.Unix(1_800_000_000, 0),
	}
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Clone(r.Context()))
	user, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/repos/"), "/")
	repo, ref, ok := strings.Cut(rest, "/commits/")
	if r.Method != http.MethodGet || !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("X-Ratelimit-Limit", strconv.Itoa(f.limit))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(f.reset.Unix(), 10))
	if f.status != 0 {
		h.Set("X-Ratelimit-Remaining", strconv.Itoa(f.remaining))
		w.WriteHeader(f.status)
		return
	}
	if f.remaining == 0 {
		h.Set("X-Ratelimit-Remaining", "0")
		http.Error(w, `{"message": "API rate limit exceeded"}`, http.StatusForbidden)
		return
	}
	refs, ok := f.repos[user+"/"+repo]
	sha, found := refs[ref]
	etag := fmt.Sprintf(`W/"%s"`, sha)
	if found && r.Header.Get("If-None-Match") == etag {
		h.Set("X-Ratelimit-Remaining", strconv.Itoa(f.remaining))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	f.remaining--
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(f.remaining))
	switch {
	case !ok:
		http.Error(w, `{"message": "Not Found"}`, http.StatusNotFound)
	case !found:
		http.Error(w, `{"message": "No commit found for SHA: `+ref+`"}`, http.StatusUnprocessableEntity)
	case f.noSHA:
		fmt.Fprint(w, `{"node_id": "x"}`)
	default:
		h.Set("ETag", etag)
		// "sha" is not first, and "files" is large, as in real answers.
		fmt.Fprintf(w, `{"url": "x", "files": [%s"x"], "sha": %q, "commit": {"message": "m"}}`,
			strings.Repeat(`"file", `, 1000), sha)
	}
}

// requestCount returns how many requests the fake received.
func (f *fakeGitHub) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeGitHub) lastRequest() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *fakeGitHub) set(fn func(f *fakeGitHub)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// newTestGitHub starts fake and returns a provider talking to it whose clock
// stands at now.
func newTestGitHub(t *testing.T, fake *fakeGitHub, cfg GitHubConfig, m *Metrics) (*GitHub, *time.Time) {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg.APIBaseURL = srv.URL + "/"
	log, _ := newTestLogger()
	gh := NewGitHub(cfg, srv.Client(), m, log)
	now := time.Unix(1_700_000_000, 0)
	gh.now = func() time.Time { return now }
	return gh, &now
}

func resolveSpec(t *testing.T, p Provider, spec string) (binderbuild.Resolved, error) {
	t.Helper()
	repo, err := p.Parse(spec)
	if err != nil {
		t.Fatalf("Parse(%q) error = %v", spec, err)
	}
	return p.Resolve(t.Context(), repo)
}

func TestGitHubResolve(t *testing.T) {
	gh, _ := newTestGitHub(t, newFakeGitHub(), GitHubConfig{Hostname: "github.example"}, nil)
	tests := []struct {
		spec                  string
		sha, resolved, refURL string
	}{
		{
			spec:     "jupyterhub/zero-to-jupyterhub-k8s/0.9.1",
			sha:      "38e50c71130fcf56655685f0992f4f125bef3879",
			resolved: "jupyterhub/zero-to-jupyterhub-k8s/38e50c71130fcf56655685f0992f4f125bef3879",
			refURL:   "https://github.example/jupyterhub/zero-to-jupyterhub-k8s/tree/38e50c71130fcf56655685f0992f4f125bef3879",
		},
		{
			spec:     "jupyterhub/zero-to-jupyterhub-k8s.git/f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
			sha:      "f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
			resolved: "jupyterhub/zero-to-jupyterhub-k8s/f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
			refURL:   "https://github.example/jupyterhub/zero-to-jupyterhub-k8s/tree/f7f3ff6d1bf708bdc12e5f10e18b2a90a4795603",
		},
		{
			spec:     "jupyterhub/zero-to-jupyterhub-k8s/feature%2Fx",
			sha:      "1111111111111111111111111111111111111111",
			resolved: "jupyterhub/zero-to-jupyterhub-k8s/1111111111111111111111111111111111111111",
			refURL:   "https://github.example/jupyterhub/zero-to-jupyterhub-k8s/tree/1111111111111111111111111111111111111111",
		},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := resolveSpec(t, gh, tc.spec)
			if err != nil {
				t.Fatalf("Resolve(%q) error = %v", tc.spec, err)
			}
			if got.ResolvedRef != tc.sha || got.ResolvedSpec != tc.resolved || got.RefURL != tc.refURL {
				t.Errorf("Resolve(%q) = (%q, %q, %q), want (%q, %q, %q)", tc.spec,
					got.ResolvedRef, got.ResolvedSpec, got.RefURL, tc.sha, tc.resolved, tc.refURL)
			}
			if got.Spec != tc.spec {
				t.Errorf("Resolve(%q).Spec = %q, want the spec", tc.spec, got.Spec)
			}
		})
	}
	for _, spec := range []string{"jupyterhub/zero-to-jupyterhub-k8s/nosuchref", "jupyterhub/zero-to-jupyterhub-k8s/v0.1.2.3.4.5.6", "nobody/nothing/HEAD"} {
		t.Run(spec, func(t *testing.T) {
			_, err := resolveSpec(t, gh, spec)
			wantNotFound(t, "Resolve("+spec+")", err)
		})
	}
}

func TestGitHubRequest(t *testing.T) {
	tests := []struct {
		name          string
		cfg           GitHubConfig
		wantAuth      string
		wantBasicUser string
	}{
		{name: "anonymous"},
		{name: "token", cfg: GitHubConfig{AccessToken: "s3cret"}, wantAuth: "token s3cret"},
		{name: "token wins over client", cfg: GitHubConfig{AccessToken: "s3cret", ClientID: "id", ClientSecret: "cs"}, wantAuth: "token s3cret"},
		{name: "client id and secret", cfg: GitHubConfig{ClientID: "id", ClientSecret: "cs"}, wantBasicUser: "id"},
		{name: "client id alone", cfg: GitHubConfig{ClientID: "id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeGitHub()
			gh, _ := newTestGitHub(t, fake, tc.cfg, nil)
			if _, err := resolveSpec(t, gh, "jupyterhub/zero-to-jupyterhub-k8s/feature%2Fx"); err != nil {
				t.Fatal(err)
			}
			r := fake.lastRequest()
			if got, want := r.URL.EscapedPath(), "/repos/jupyterhub/zero-to-jupyterhub-k8s/commits/feature%2Fx"; got != want {
				t.Errorf("request path = %q, want %q (ref as given in the spec)", got, want)
			}
			if got := r.Header.Get("User-Agent"); got != "BinderHub" {
				t.Errorf("User-Agent = %q, want BinderHub", got)
			}
			user, pass, basic := r.BasicAuth()
			switch {
			case tc.wantBasicUser != "":
				if !basic || user != tc.wantBasicUser || pass != tc.cfg.ClientSecret {
					t.Errorf("BasicAuth() = (%q, %q, %v), want (%q, %q, true)", user, pass, basic, tc.wantBasicUser, tc.cfg.ClientSecret)
				}
			case r.Header.Get("Authorization") != tc.wantAuth:
				t.Errorf("Authorization = %q, want %q", r.Header.Get("Authorization"), tc.wantAuth)
			}
		})
	}
}

func TestGitHubETagRevalidation(t *testing.T) {
	fake := newFakeGitHub()
	m, reg := newTestMetrics(t)
	gh, _ := newTestGitHub(t, fake, GitHubConfig{}, m)
	const spec = "jupyterhub/zero-to-jupyterhub-k8s/0.9.1"

	for i := range 3 {
		got, err := resolveSpec(t, gh, spec)
		if err != nil {
			t.Fatalf("Resolve #%d error = %v", i, err)
		}
		if want := "38e50c71130fcf56655685f0992f4f125bef3879"; got.ResolvedRef != want {
			t.Errorf("Resolve #%d = %q, want %q", i, got.ResolvedRef, want)
		}
		inm := fake.lastRequest().Header.Get("If-None-Match")
		if want := map[bool]string{true: "", false: `W/"38e50c71130fcf56655685f0992f4f125bef3879"`}[i == 0]; inm != want {
			t.Errorf("Resolve #%d sent If-None-Match %q, want %q", i, inm, want)
		}
	}
	if got := fake.requestCount(); got != 3 {
		t.Errorf("requests = %d, want 3 (every resolution revalidates)", got)
	}
	if got := testutil.ToFloat64(m.upstream.WithLabelValues("github", "not_modified")); got != 2 {
		t.Errorf("not_modified requests = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.upstream.WithLabelValues("github", "ok")); got != 1 {
		t.Errorf("ok requests = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.githubRemaining); got != 4999 {
		t.Errorf("rate limit gauge = %v, want 4999", got)
	}
	if n, err := testutil.GatherAndCount(reg, "binderhub_github_rate_limit_remaining"); err != nil || n != 1 {
		t.Errorf("GatherAndCount(binderhub_github_rate_limit_remaining) = %d, %v; want 1", n, err)
	}

	// A moved ref: the ETag no longer matches, the new sha replaces the old.
	fake.set(func(f *fakeGitHub) {
		f.repos["jupyterhub/zero-to-jupyterhub-k8s"]["0.9.1"] = "2222222222222222222222222222222222222222"
	})
	got, err := resolveSpec(t, gh, spec)
	if err != nil || got.ResolvedRef != "2222222222222222222222222222222222222222" {
		t.Errorf("Resolve after the ref moved = %q, %v; want 2222…", got.ResolvedRef, err)
	}
}

func TestGitHubNotFoundCache(t *testing.T) {
	fake := newFakeGitHub()
	m, _ := newTestMetrics(t)
	gh, now := newTestGitHub(t, fake, GitHubConfig{}, m)
	for _, spec := range []string{"nobody/nothing/HEAD", "jupyterhub/zero-to-jupyterhub-k8s/nosuchref"} {
		t.Run(spec, func(t *testing.T) {
			before := fake.requestCount()
			_, err := resolveSpec(t, gh, spec)
			wantNotFound(t, "first Resolve", err)
			_, err = resolveSpec(t, gh, spec)
			wantNotFound(t, "second Resolve", err)
			if got := fake.requestCount() - before; got != 1 {
				t.Errorf("requests for two resolutions = %d, want 1 (404 cache)", got)
			}
			*now = now.Add(301 * time.Second)
			_, err = resolveSpec(t, gh, spec)
			wantNotFound(t, "Resolve after 301s", err)
			if got := fake.requestCount() - before; got != 2 {
				t.Errorf("requests after the 404 cache expired = %d, want 2", got)
			}
		})
	}
	if got := testutil.ToFloat64(m.upstream.WithLabelValues("github", "not_found")); got != 4 {
		t.Errorf("not_found requests = %v, want 4", got)
	}
}

func TestGitHubErrors(t *testing.T) {
	tests := []struct {
		name    string
		fake    func(f *fakeGitHub)
		reset   time.Duration // x-ratelimit-reset relative to the provider's clock
		want    string
		outcome string
	}{
		{name: "rate limit now", fake: func(f *fakeGitHub) { f.remaining = 0 }, want: "GitHub rate limit exceeded. Try again in 5 minutes.", outcome: "rate_limited"},
		{name: "rate limit 299s", fake: func(f *fakeGitHub) { f.remaining = 0 }, reset: 299 * time.Second, want: "GitHub rate limit exceeded. Try again in 5 minutes.", outcome: "rate_limited"},
		{name: "rate limit 300s", fake: func(f *fakeGitHub) { f.remaining = 0 }, reset: 300 * time.Second, want: "GitHub rate limit exceeded. Try again in 10 minutes.", outcome: "rate_limited"},
		{name: "rate limit 59m", fake: func(f *fakeGitHub) { f.remaining = 0 }, reset: 59 * time.Minute, want: "GitHub rate limit exceeded. Try again in 60 minutes.", outcome: "rate_limited"},
		{name: "reset in the past", fake: func(f *fakeGitHub) { f.remaining = 0 }, reset: -time.Hour, want: "GitHub rate limit exceeded. Try again in 5 minutes.", outcome: "rate_limited"},
		{name: "forbidden", fake: func(f *fakeGitHub) { f.status = http.StatusForbidden }, want: "unexpected response from the GitHub API (HTTP 403)", outcome: "error"},
		{name: "server error", fake: func(f *fakeGitHub) { f.status = http.StatusInternalServerError }, want: "unexpected response from the GitHub API (HTTP 500)", outcome: "error"},
		{name: "not modified without etag", fake: func(f *fakeGitHub) { f.status = http.StatusNotModified }, want: "unexpected response from the GitHub API (HTTP 304)", outcome: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeGitHub()
			m, _ := newTestMetrics(t)
			gh, now := newTestGitHub(t, fake, GitHubConfig{AccessToken: "s3cret"}, m)
			fake.set(tc.fake)
			fake.set(func(f *fakeGitHub) { f.reset = now.Add(tc.reset) })
			_, err := resolveSpec(t, gh, "jupyterhub/zero-to-jupyterhub-k8s/0.9.1")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Resolve error = %v, want %q", err, tc.want)
			}
			if got := testutil.ToFloat64(m.upstream.WithLabelValues("github", tc.outcome)); got != 1 {
				t.Errorf("%s requests = %v, want 1", tc.outcome, got)
			}
		})
	}
}

func TestGitHubRateLimitGaugeAndLog(t *testing.T) {
	tests := []struct {
		remaining int
		wantLevel string
	}{
		{remaining: 4999, wantLevel: "level=DEBUG"},
		{remaining: 2000, wantLevel: "level=INFO"},
		{remaining: 999, wantLevel: "level=WARN"},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.remaining), func(t *testing.T) {
			fake := newFakeGitHub()
			fake.remaining = tc.remaining + 1
			m, _ := newTestMetrics(t)
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			log, logs := newTestLogger()
			gh := NewGitHub(GitHubConfig{APIBaseURL: srv.URL, AccessToken: "s3cret"}, srv.Client(), m, log)
			if _, err := resolveSpec(t, gh, "jupyterhub/zero-to-jupyterhub-k8s/0.9.1"); err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(m.githubRemaining); got != float64(tc.remaining) {
				t.Errorf("gauge = %v, want %d", got, tc.remaining)
			}
			line := grepLine(logs.String(), "GitHub rate limit remaining")
			if !strings.Contains(line, tc.wantLevel) {
				t.Errorf("rate limit log line = %q, want %s", line, tc.wantLevel)
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Errorf("logs contain the token:\n%s", logs)
			}
		})
	}
}

func TestGitHubUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	gh := NewGitHub(GitHubConfig{APIBaseURL: srv.URL, AccessToken: "s3cret"}, nil, nil, nil)
	_, err := resolveSpec(t, gh, "u/r/HEAD")
	if want := "could not reach the GitHub API: connection refused"; err == nil || err.Error() != want {
		t.Errorf("Resolve error = %v, want %q", err, want)
	}
}

func TestGitHubNoSHA(t *testing.T) {
	fake := newFakeGitHub()
	fake.noSHA = true
	gh, _ := newTestGitHub(t, fake, GitHubConfig{}, nil)
	_, err := resolveSpec(t, gh, "jupyterhub/zero-to-jupyterhub-k8s/0.9.1")
	wantNotFound(t, "Resolve", err)
}

func grepLine(text, substr string) string {
	for line := range strings.Lines(text) {
		if strings.Contains(line, substr) {
			return line
		}
	}
	return ""
}

func TestStringField(t *testing.T) {
	tests := []struct {
		body      string
		want      string
		wantFound bool
		wantErr   bool
	}{
		{body: `{"sha": "abc"}`, want: "abc", wantFound: true},
		{body: `{"a": {"sha": "nested"}, "b": [1, 2], "sha": "top"}`, want: "top", wantFound: true},
		{body: `{"sha": null}`, wantFound: true},
		{body: `{"other": 1}`},
		{body: `[]`, wantErr: true},
		{body: `{"sha": `, wantErr: true},
		{body: ``, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			got, found, err := stringField(strings.NewReader(tc.body), "sha")
			if got != tc.want || found != tc.wantFound || (err != nil) != tc.wantErr {
				t.Errorf("stringField(%q) = %q, %v, %v; want %q, %v, error %v", tc.body, got, found, err, tc.want, tc.wantFound, tc.wantErr)
			}
		})
	}
	// The decoder stops at the field: what follows may be anything.
	if got, _, err := stringField(strings.NewReader(`{"sha": "first", garbage`), "sha"); got != "first" || err != nil {
		t.Errorf("stringField stopped late: %q, %v", got, err)
	}
}
