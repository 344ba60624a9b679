package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/auth"
	"github.com/binderbuild/binderbuild/internal/fakehub"
)

func hubServer(t *testing.T, api string, scopes []string, log *slog.Logger) (*httptest.Server, string) {
	t.Helper()
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	a, checks := hubAuth(t, auth.Config{Auth: auth.JupyterHub, JupyterhubApiUrl: api, RequiredScopes: scopes}, log)
	return newTestServer(t, Config{APIOnly: true}, Deps{Images: present(image), Auth: a, Health: checks, Log: log}), image
}

// hubAuth returns the hub Authenticator of cfg and its health check, as
// cmd wires them.
func hubAuth(t *testing.T, cfg auth.Config, log *slog.Logger) (Authenticator, []HealthCheck) {
	t.Helper()
	a, check, err := auth.New(cfg, &http.Client{Timeout: 5 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	return a, []HealthCheck{{Service: "JupyterHub API", Check: check}}
}

// TestHubAuthEvents checks every authentication outcome as the client sees
// it, event by event.
func TestHubAuthEvents(t *testing.T) {
	hub := fakehub.Start(t)
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

func TestHubHealthCheck(t *testing.T) {
	hub := fakehub.Start(t)
	a, checks := hubAuth(t, auth.Config{Auth: auth.JupyterHub, JupyterhubApiUrl: hub.URL + "/hub/api"}, nil)
	// With authentication on, /health's details are the metrics token's.
	ts := newTestServer(t, Config{APIOnly: true, MetricsToken: "mtok-1"}, Deps{Auth: a, Health: checks})
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
}

func TestTokenAuth(t *testing.T) {
	ta, err := auth.LoadTokenAuth(writeTokens(t, "ci-bot s3cret-one\n  s3cret-two  \n"))
	if err != nil {
		t.Fatal(err)
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
	hub := fakehub.Start(t)
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
