package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
)

// fakeHub is JupyterHub's GET /hub/api/user, answering per token:
// "alice-token" and "bob-token" are users, "svc-token" a service, "tok-hub-502"
// a hub error, "tok-hub-418" a 418 with an OAuth error body, "tok-hub-junk" a 200 that
// is not a user model; anything else 403 as the real hub (3.0) does.
type fakeHub struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]int // Authorization header → count
	down     atomic.Bool    // health answers 503
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{requests: map[string]int{}}
	users := map[string]User{
		"alice-token": {Name: "alice", Kind: "user", Scopes: []string{"access:services!service=binder", "read:users!user=alice"}},
		"bob-token":   {Name: "bob", Kind: "user", Scopes: []string{"read:users!user=bob"}},
		"root-token":  {Name: "root", Kind: "user", Scopes: []string{"access:services"}},
		"svc-token":   {Name: "fancy", Kind: "service", Scopes: []string{}},
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hub/api/health":
			if h.down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
			}
			return
		case "/hub/api/user":
		default:
			http.NotFound(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		h.mu.Lock()
		h.requests[auth]++
		h.mu.Unlock()
		token, ok := strings.CutPrefix(auth, "token ")
		w.Header().Set("Content-Type", "application/json")
		switch u, found := users[token]; {
		case !ok:
			w.WriteHeader(http.StatusForbidden)
		case found:
			_ = json.NewEncoder(w).Encode(u)
		case token == "tok-hub-502":
			w.WriteHeader(http.StatusBadGateway)
		case token == "tok-hub-418":
			w.WriteHeader(http.StatusTeapot)
			fmt.Fprint(w, `{"error": "invalid_request", "error_description": "short and stout"}`)
		case token == "tok-hub-junk":
			fmt.Fprint(w, `<html>`)
		default:
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"status": 403, "message": "Forbidden"}`)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *fakeHub) count(token string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests["token "+token]
}

func hubServer(t *testing.T, api string, scopes []string, log *slog.Logger) (*httptest.Server, string) {
	t.Helper()
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	cfg := AccessConfig{Auth: AuthJupyterHub, JupyterhubApiUrl: api, RequiredScopes: scopes}
	auth, checks, err := NewAuth(cfg, &http.Client{Timeout: 5 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	return newTestServer(t, Config{APIOnly: true, AccessConfig: cfg}, Deps{Images: present(image), Auth: auth, Health: checks, Log: log}), image
}

// TestHubAuthEvents checks every authentication outcome as the client sees
// it, event by event.
func TestHubAuthEvents(t *testing.T) {
	hub := newFakeHub(t)
	ready := func(image string) string {
		return `data: {"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n"
	}
	failed := func(status int, msg string) string {
		return fmt.Sprintf(`data: {"phase": "failed", "status_code": %d, "message": %q}`, status, msg) + "\n\n"
	}
	host, _ := os.Hostname()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/hub/api"
	down.Close()
	tests := []struct {
		name   string
		api    string
		scopes []string
		auth   string // Authorization header
		want   func(image string) string
	}{
		{name: "no header", want: func(string) string { return failed(403, "Forbidden\n") }},
		{name: "bearer", auth: "Bearer alice-token", want: ready},
		{name: "token", auth: "token alice-token", want: ready},
		{name: "case-insensitive scheme", auth: "BEARER   alice-token", want: ready},
		{name: "service token", auth: "Bearer svc-token", want: ready},
		{name: "basic auth", auth: "Basic YWxpY2U6cHc=", want: func(string) string { return failed(403, "Forbidden\n") }},
		{name: "empty bearer", auth: "Bearer ", want: func(string) string { return failed(403, "Forbidden\n") }},
		{name: "unknown token", auth: "Bearer tok-unknown", want: func(string) string { return failed(403, "Forbidden\n") }},
		{name: "hub 5xx", auth: "Bearer tok-hub-502", want: func(string) string {
			return failed(502, "Failed to check authorization (upstream problem)\n")
		}},
		{name: "hub other 4xx", auth: "Bearer tok-hub-418", want: func(string) string {
			return failed(500, "Failed to check authorization: short and stout\n")
		}},
		{name: "hub answer not a user", auth: "Bearer tok-hub-junk", want: func(string) string { return failed(500, "Failed to check authorization\n") }},
		{name: "hub unreachable", api: downURL, auth: "Bearer alice-token", want: func(string) string {
			return failed(500, fmt.Sprintf("Failed to connect to Hub API at '%s'.  Is the Hub accessible at this URL (from host: %s)?\n", downURL, host))
		}},
		{name: "scope held", scopes: []string{"access:services!service=binder"}, auth: "Bearer alice-token", want: ready},
		{name: "unfiltered scope satisfies", scopes: []string{"access:services!service=binder"}, auth: "Bearer root-token", want: ready},
		{name: "one of several scopes", scopes: []string{"admin:users", "read:users!user=bob"}, auth: "Bearer bob-token", want: ready},
		{name: "scope missing", scopes: []string{"access:services!service=binder"}, auth: "Bearer bob-token", want: func(string) string {
			return failed(403, "user bob is not allowed.\n")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := tc.api
			if api == "" {
				api = hub.URL + "/hub/api/"
			}
			ts, image := hubServer(t, api, tc.scopes, nil)
			var header []string
			if tc.auth != "" {
				header = []string{"Authorization", tc.auth}
			}
			resp, body := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true", header...)
			if want := tc.want(image); body != want {
				t.Errorf("body = %q, want %q", body, want)
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("response %d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestHubAuthCache: valid answers are reused for 5 minutes, rejections for
// 30 s, hub failures not at all; concurrent checks share one request.
func TestHubAuthCache(t *testing.T) {
	hub := newFakeHub(t)
	auth, err := NewHubAuth(AccessConfig{JupyterhubApiUrl: hub.URL + "/hub/api"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	auth.cache.now = clk.Now
	ctx := context.Background()
	check := func(token string, wantUser string) {
		t.Helper()
		u, err := auth.Authenticate(ctx, token)
		var got string
		if u != nil {
			got = u.Name
		}
		if wantUser == "error" {
			if err == nil {
				t.Errorf("Authenticate(%s) succeeded, want an error", token)
			}
			return
		}
		if err != nil || got != wantUser {
			t.Errorf("Authenticate(%s) = %q, %v; want %q", token, got, err, wantUser)
		}
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { check("alice-token", "alice") })
	}
	wg.Wait()
	check("tok-unknown", "")
	check("tok-unknown", "")
	check("tok-hub-502", "error")
	check("tok-hub-502", "error")
	if n := hub.count("alice-token"); n != 1 {
		t.Errorf("hub asked %d times about a valid token, want 1", n)
	}
	if n := hub.count("tok-unknown"); n != 1 {
		t.Errorf("hub asked %d times about a rejected token, want 1", n)
	}
	if n := hub.count("tok-hub-502"); n != 2 {
		t.Errorf("hub asked %d times during a hub failure, want 2 (failures are not cached)", n)
	}
	clk.Add(31 * time.Second)
	check("tok-unknown", "")
	check("alice-token", "alice")
	if a, n := hub.count("alice-token"), hub.count("tok-unknown"); a != 1 || n != 2 {
		t.Errorf("after 31 s: hub asked %d (valid), %d (rejected) times, want 1, 2", a, n)
	}
	clk.Add(5 * time.Minute)
	check("alice-token", "alice")
	if n := hub.count("alice-token"); n != 2 {
		t.Errorf("after 5 min: hub asked %d times about a valid token, want 2", n)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	clk := newClock()
	c := newTokenCache(time.Minute, time.Second, 50, clk.Now)
	for i := range 500 {
		c.put(hashToken(fmt.Sprint(i)), &User{Name: "u"})
		if c.len() > 50 {
			t.Fatalf("cache holds %d entries, want at most 50", c.len())
		}
	}
}

func TestHubHealthCheck(t *testing.T) {
	hub := newFakeHub(t)
	cfg := AccessConfig{Auth: AuthJupyterHub, JupyterhubApiUrl: hub.URL + "/hub/api"}
	hubAuth, checks, err := NewAuth(cfg, &http.Client{Timeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// With authentication on, /health's details are the metrics token's.
	ts := newTestServer(t, Config{APIOnly: true, MetricsToken: "mtok-1", AccessConfig: cfg}, Deps{Auth: hubAuth, Health: checks})
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer mtok-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep healthReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(rep.Checks) != 1 || rep.Checks[0].Service != "JupyterHub API" || !rep.Checks[0].OK {
		t.Errorf("/health = %d %+v, want an ok JupyterHub API check", resp.StatusCode, rep)
	}
	hub.down.Store(true)
	auth, _ := NewHubAuth(AccessConfig{JupyterhubApiUrl: hub.URL + "/hub/api"}, nil, nil)
	if err := auth.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Check with the hub down = %v, want a 503 error", err)
	}
}

func TestNewAuth(t *testing.T) {
	if a, checks, err := NewAuth(AccessConfig{}, nil, nil); a != nil || checks != nil || err != nil {
		t.Errorf("NewAuth(none) = %v, %v, %v; want nothing", a, checks, err)
	}
	a, _, err := NewAuth(AccessConfig{Auth: AuthJupyterHub}, nil, nil)
	if err != nil || a.(*HubAuth).APIURL() != DefaultHubAPIURL {
		t.Errorf("default hub API = %v, %v; want %s", a, err, DefaultHubAPIURL)
	}
	for _, cfg := range []AccessConfig{
		{Auth: AuthJupyterHub, JupyterhubApiUrl: "hub:8081/hub/api"},
		{Auth: AuthTokens},
		{Auth: AuthTokens, AuthTokensFile: "/nonexistent"},
		{Auth: "oauth"},
	} {
		if _, _, err := NewAuth(cfg, nil, nil); err == nil {
			t.Errorf("NewAuth(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestFromJupyterHubEnv(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		set        []string
		wantScopes []string
		wantAPI    string
	}{
		{name: "nothing", wantScopes: nil},
		{name: "api url", env: map[string]string{"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"}, wantAPI: "http://hub:8081/hub/api"},
		{name: "access scopes", env: map[string]string{"JUPYTERHUB_OAUTH_ACCESS_SCOPES": `["access:services!service=binder", "x"]`, "JUPYTERHUB_SERVICE_NAME": "other"},
			wantScopes: []string{"access:services!service=binder", "x"}},
		{name: "deprecated scopes", env: map[string]string{"JUPYTERHUB_OAUTH_SCOPES": `["y"]`}, wantScopes: []string{"y"}},
		{name: "service name", env: map[string]string{"JUPYTERHUB_SERVICE_NAME": "binder"}, wantScopes: []string{"access:services!service=binder"}},
		{name: "setting wins", env: map[string]string{"JUPYTERHUB_SERVICE_NAME": "binder"}, set: []string{"z"}, wantScopes: []string{"z"}},
	}
	for _, tc := range tests {
		c := AccessConfig{RequiredScopes: tc.set}
		if err := c.FromJupyterHubEnv(func(k string) string { return tc.env[k] }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(c.RequiredScopes) != fmt.Sprint(tc.wantScopes) || c.JupyterhubApiUrl != tc.wantAPI {
			t.Errorf("%s: scopes %q api %q, want %q %q", tc.name, c.RequiredScopes, c.JupyterhubApiUrl, tc.wantScopes, tc.wantAPI)
		}
	}
	c := AccessConfig{}
	if err := c.FromJupyterHubEnv(func(k string) string {
		return map[string]string{"JUPYTERHUB_OAUTH_ACCESS_SCOPES": "access:services"}[k]
	}); err == nil || !strings.Contains(err.Error(), "JUPYTERHUB_OAUTH_ACCESS_SCOPES") {
		t.Errorf("a non-JSON scope list gave %v, want an error naming the variable", err)
	}
}

func TestTokenAuth(t *testing.T) {
	path := writeTokens(t, "# clients\n\nci-bot   s3cret-one\n  s3cret-two  \n")
	ta, err := LoadTokenAuth(path)
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]string{"s3cret-one": "ci-bot", "s3cret-two": "token-4", "s3cret": "", "ci-bot": "", "# clients": ""} {
		u, err := ta.Authenticate(context.Background(), token)
		var got string
		if u != nil {
			got = u.Name
		}
		if err != nil || got != want {
			t.Errorf("Authenticate(%q) = %q, %v; want %q", token, got, err, want)
		}
	}
	for _, bad := range []string{"# only comments\n", "a b c\n"} {
		if _, err := LoadTokenAuth(writeTokens(t, bad)); err == nil {
			t.Errorf("LoadTokenAuth(%q) succeeded, want an error", bad)
		}
	}
	ts := newTestServer(t, Config{APIOnly: true}, Deps{Auth: ta, Images: present(binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha))})
	if _, body := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true", "Authorization", "Bearer s3cret-two"); !strings.Contains(body, `"phase": "ready"`) {
		t.Errorf("valid token: %q", body)
	}
	if _, body := get(t, ts.URL, "/build/gh/org/repo/HEAD?build_only=true", "Authorization", "Bearer s3cret-three"); !strings.Contains(body, `"Forbidden\n"`) {
		t.Errorf("invalid token: %q", body)
	}
}

// TestLogsHoldNoTokens sends every kind of token through every failure
// path with debug logging on and checks that none reaches the log.
func TestLogsHoldNoTokens(t *testing.T) {
	hub := newFakeHub(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts, _ := hubServer(t, hub.URL+"/hub/api", []string{"access:services!service=binder"}, log)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	tsDown, _ := hubServer(t, down.URL+"/hub/api", nil, log)
	secrets := []string{"alice-token", "bob-token", "tok-unknown", "tok-hub-502", "tok-hub-418", "tok-hub-junk"}
	for _, tok := range secrets {
		for _, base := range []string{ts.URL, tsDown.URL} {
			get(t, base, "/build/gh/org/repo/HEAD?build_only=true&build_token=jwt-"+tok, "Authorization", "Bearer "+tok)
			get(t, base, "/build/gh/org/repo/HEAD?build_only=true", "Authorization", "token "+tok)
		}
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "hub token check") {
		t.Fatalf("the hub failures were not logged, so the check proves nothing:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log contains token %q:\n%s", s, out)
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// blockingHub is a hub whose /hub/api/user answers 403 only once released;
// it reports each request's arrival and whether the client cancelled it.
type blockingHub struct {
	*httptest.Server
	arrived   chan string // token of each request
	cancelled chan string // token of each request the client gave up on
	release   chan struct{}
	inFlight  atomic.Int32
	peak      atomic.Int32
}

func newBlockingHub(t *testing.T) *blockingHub {
	h := &blockingHub{arrived: make(chan string, 100), cancelled: make(chan string, 100), release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := h.inFlight.Add(1)
		defer h.inFlight.Add(-1)
		for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
		}
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
		h.arrived <- token
		select {
		case <-h.release:
			w.WriteHeader(http.StatusForbidden)
		case <-r.Context().Done():
			h.cancelled <- token
		}
	}))
	t.Cleanup(h.Close)
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	return h
}

// TestHubAuthBoundsConcurrentChecks: random tokens cannot put more than
// HubMaxConcurrentChecks requests on the hub; the rest fail with 503.
func TestHubAuthBoundsConcurrentChecks(t *testing.T) {
	hub := newBlockingHub(t)
	auth, err := NewHubAuth(AccessConfig{JupyterhubApiUrl: hub.URL + "/hub/api", HubMaxConcurrentChecks: 2}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := auth.Authenticate(t.Context(), fmt.Sprintf("random-%d", i))
			results <- err
		}()
		<-hub.arrived
	}
	for i := range 10 {
		_, err := auth.Authenticate(t.Context(), fmt.Sprintf("more-random-%d", i))
		var re *requestError
		if !errors.As(err, &re) || re.status != http.StatusServiceUnavailable ||
			re.msg != "Too many authorization checks in progress, please try again in a minute.\n" {
			t.Fatalf("check beyond the limit: error = %#v, want the 503 busy answer", err)
		}
	}
	close(hub.release)
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("check within the limit: error = %v, want nil (no user)", err)
		}
	}
	if p := hub.peak.Load(); p != 2 {
		t.Errorf("hub requests at once = %d, want 2", p)
	}
	if n := len(hub.arrived); n != 0 {
		t.Errorf("%d more requests reached the hub, want none", n)
	}
}

// TestHubAuthCancelsAbandonedChecks: a check nobody waits for any more is
// cancelled and frees its slot; one still awaited by another client is not.
func TestHubAuthCancelsAbandonedChecks(t *testing.T) {
	hub := newBlockingHub(t)
	auth, err := NewHubAuth(AccessConfig{JupyterhubApiUrl: hub.URL + "/hub/api", HubMaxConcurrentChecks: 1, HubCheckQueueTimeout: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	errs := make(chan error, 2)
	go func() { _, err := auth.Authenticate(ctx1, "shared-token"); errs <- err }()
	<-hub.arrived
	go func() { _, err := auth.Authenticate(ctx2, "shared-token"); errs <- err }()
	for auth.group.Waiters(hashToken("shared-token")) < 2 {
		time.Sleep(time.Millisecond)
	}

	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("first client: error = %v, want context.Canceled", err)
	}
	select {
	case tok := <-hub.cancelled:
		t.Fatalf("hub request for %s cancelled while a second client waits", tok)
	default:
	}
	cancel2()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("second client: error = %v, want context.Canceled", err)
	}
	if tok := <-hub.cancelled; tok != "shared-token" {
		t.Errorf("cancelled hub request for %q, want shared-token", tok)
	}

	// The slot is free again: the next check reaches the hub.
	done := make(chan error, 1)
	go func() { _, err := auth.Authenticate(t.Context(), "next-token"); done <- err }()
	if tok := <-hub.arrived; tok != "next-token" {
		t.Errorf("next hub request for %q, want next-token", tok)
	}
	close(hub.release)
	if err := <-done; err != nil {
		t.Errorf("next check: error = %v", err)
	}
}
