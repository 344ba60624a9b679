package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/fakehub"
)

// testClock returns a clock starting at a fixed time and a function that
// moves it on.
func testClock() (now func() time.Time, advance func(time.Duration)) {
	var offset atomic.Int64
	start := time.Unix(1_700_000_000, 0)
	return func() time.Time { return start.Add(time.Duration(offset.Load())) },
		func(d time.Duration) { offset.Add(int64(d)) }
}

// tokensFile is a tokens file holding content.
func tokensFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHubAuthCache: valid answers are reused for 5 minutes, rejections for
// 30 s, hub failures not at all; concurrent checks share one request.
func TestHubAuthCache(t *testing.T) {
	hub := fakehub.Start(t)
	auth, err := NewHubAuth(Config{JupyterhubApiUrl: hub.URL + "/hub/api"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now, advance := testClock()
	auth.cache.now = now
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
	if n := hub.Count("alice-token"); n != 1 {
		t.Errorf("hub asked %d times about a valid token, want 1", n)
	}
	if n := hub.Count("tok-unknown"); n != 1 {
		t.Errorf("hub asked %d times about a rejected token, want 1", n)
	}
	if n := hub.Count("tok-hub-502"); n != 2 {
		t.Errorf("hub asked %d times during a hub failure, want 2 (failures are not cached)", n)
	}
	advance(31 * time.Second)
	check("tok-unknown", "")
	check("alice-token", "alice")
	if a, n := hub.Count("alice-token"), hub.Count("tok-unknown"); a != 1 || n != 2 {
		t.Errorf("after 31 s: hub asked %d (valid), %d (rejected) times, want 1, 2", a, n)
	}
	advance(5 * time.Minute)
	check("alice-token", "alice")
	if n := hub.Count("alice-token"); n != 2 {
		t.Errorf("after 5 min: hub asked %d times about a valid token, want 2", n)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	now, _ := testClock()
	c := newTokenCache(time.Minute, time.Second, 50, now)
	for i := range 500 {
		c.put(hashToken(fmt.Sprint(i)), &User{Name: "u"})
		if c.len() > 50 {
			t.Fatalf("cache holds %d entries, want at most 50", c.len())
		}
	}
}

// TestHubCheck: the health check fails while the hub's does.
func TestHubCheck(t *testing.T) {
	hub := fakehub.Start(t)
	auth, err := NewHubAuth(Config{JupyterhubApiUrl: hub.URL + "/hub/api"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Check(context.Background()); err != nil {
		t.Errorf("Check = %v, want nil", err)
	}
	hub.Down.Store(true)
	if err := auth.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Check with the hub down = %v, want a 503 error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Auth: "ldap"}, `invalid BINDERBUILD_AUTH="ldap"`},
		{Config{Auth: "tokens"}, "needs BINDERBUILD_AUTH_TOKENS_FILE"},
		{Config{Auth: "jupyterhub"}, ""},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestNew(t *testing.T) {
	if a, check, err := New(Config{}, nil, nil); a != nil || check != nil || err != nil {
		t.Errorf("New(none) = %v, check set %v, %v; want nothing", a, check != nil, err)
	}
	a, _, err := New(Config{Auth: JupyterHub}, nil, nil)
	if err != nil || a.(*HubAuth).APIURL() != DefaultHubAPIURL {
		t.Errorf("default hub API = %v, %v; want %s", a, err, DefaultHubAPIURL)
	}
	for _, cfg := range []Config{
		{Auth: JupyterHub, JupyterhubApiUrl: "hub:8081/hub/api"},
		{Auth: Tokens},
		{Auth: Tokens, AuthTokensFile: "/nonexistent"},
		{Auth: "oauth"},
	} {
		if _, _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

// TestHubScopes: the required scopes default to what JupyterHub gives its
// services, in its order of precedence.
func TestHubScopes(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantScopes []string
	}{
		{name: "nothing", wantScopes: nil},
		{name: "access scopes", cfg: Config{JupyterhubOauthAccessScopes: `["access:services!service=binder", "x"]`, JupyterhubOauthScopes: `["y"]`, JupyterhubServiceName: "other"},
			wantScopes: []string{"access:services!service=binder", "x"}},
		{name: "deprecated scopes", cfg: Config{JupyterhubOauthScopes: `["y"]`, JupyterhubServiceName: "other"}, wantScopes: []string{"y"}},
		{name: "service name", cfg: Config{JupyterhubServiceName: "binder"}, wantScopes: []string{"access:services!service=binder"}},
		{name: "setting wins", cfg: Config{RequiredScopes: []string{"z"}, JupyterhubOauthAccessScopes: "not JSON", JupyterhubServiceName: "binder"}, wantScopes: []string{"z"}},
		{name: "empty list", cfg: Config{JupyterhubOauthAccessScopes: "[]", JupyterhubServiceName: "binder"}, wantScopes: []string{}},
	}
	for _, tc := range tests {
		got, err := tc.cfg.HubScopes()
		if err != nil || fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tc.wantScopes) {
			t.Errorf("%s: HubScopes() = %#v, %v; want %#v", tc.name, got, err, tc.wantScopes)
		}
	}
	for name, cfg := range map[string]Config{
		"JUPYTERHUB_OAUTH_ACCESS_SCOPES": {JupyterhubOauthAccessScopes: "access:services"},
		"JUPYTERHUB_OAUTH_SCOPES":        {JupyterhubOauthScopes: "access:services"},
	} {
		want := "invalid " + name + `="access:services": want a JSON list of scopes: invalid character 'a' looking for beginning of value`
		if _, err := cfg.HubScopes(); err == nil || err.Error() != want {
			t.Errorf("a non-JSON scope list in %s gave %v, want %s", name, err, want)
		}
	}
}

func TestTokenAuth(t *testing.T) {
	path := tokensFile(t, "# clients\n\nci-bot   s3cret-one\n  s3cret-two  \n")
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
		if _, err := LoadTokenAuth(tokensFile(t, bad)); err == nil {
			t.Errorf("LoadTokenAuth(%q) succeeded, want an error", bad)
		}
	}
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
	auth, err := NewHubAuth(Config{JupyterhubApiUrl: hub.URL + "/hub/api", HubMaxConcurrentChecks: 2}, nil, nil)
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
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable ||
			ae.Message != "Too many authorization checks in progress, please try again in a minute.\n" {
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
	auth, err := NewHubAuth(Config{JupyterhubApiUrl: hub.URL + "/hub/api", HubMaxConcurrentChecks: 1, HubCheckQueueTimeout: time.Hour}, nil, nil)
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
