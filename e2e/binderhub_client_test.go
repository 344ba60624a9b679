package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// TestBinderhubClientPackageTests runs the server-facing test cases of
// @jupyterhub/binderhub-client 0.5.0 itself (clients/binderhub-client/
// client.test.mjs, ported from the package's jest suite and run on its
// fixture) under the Node shims the other tests use.
func TestBinderhubClientPackageTests(t *testing.T) {
	dir := clientWorkdir(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--experimental-detect-module", "--no-warnings", "--test", "--test-reporter=tap", "client.test.mjs")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test client.test.mjs: %v\n%s", err, out)
	}
	var passed []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ok ") {
			passed = append(passed, line)
		}
	}
	if len(passed) != 8 || !strings.Contains(string(out), "\n# fail 0\n") {
		t.Errorf("want the package's 8 test cases passing, got:\n%s", out)
	}
}

// fixtureBuildLines are the repo2docker lines of the package's own
// fullbuild.eventsource fixture (binder-examples/octave): every data line
// before the launch-mode "built" event.
func fixtureBuildLines(t *testing.T) []string {
	t.Helper()
	modules, _ := clientInstall(t)
	f, err := os.Open(filepath.Join(modules, "@jupyterhub", "binderhub-client", "tests", "fixtures", "fullbuild.eventsource"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct{ Phase string }
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Phase == "built" {
			break
		}
		if ev.Phase == "waiting" {
			continue // the server's own first event
		}
		lines = append(lines, data)
	}
	if len(lines) < 700 {
		t.Fatalf("fixture has %d build lines, want the full octave build", len(lines))
	}
	return lines
}

// TestBinderhubClient streams builds with the real binderhub-client 0.5.0
// from a binderbuild binary that builds on the test cluster and
// authenticates with BINDERBUILD_AUTH=tokens.
func TestBinderhubClient(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	reg := testregistry.Start(t, testregistry.Options{})
	const (
		shaCached = "1111111111111111111111111111111111111111"
		shaOctave = "1479e0252b2e648bb755ee913292b79495931717"
		shaFail   = "2222222222222222222222222222222222222222"
		shaSlash  = "3333333333333333333333333333333333333333"
		token     = "tok-6b1f0c9e2a7d4c55-secret"
		badToken  = "tok-not-configured-0f9a8b7c"
	)
	gh := newFakeGitHub(t, map[string]string{
		"org/cached/HEAD":             shaCached,
		"binder-examples/octave/HEAD": shaOctave,
		"org/fails/main":              shaFail,
		"org/slash/feature/x":         shaSlash,
	})
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# direct API clients\nci-bot "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := buildEnv(t, ns, reg.Host(), gh.URL)
	env["BINDERBUILD_AUTH"] = "tokens"
	env["BINDERBUILD_AUTH_TOKENS_FILE"] = tokens
	svc := startService(t, env)
	pushImage(t, image(reg.Host(), "org", "cached", shaCached))

	t.Run("cache hit, stream ends after ready", func(t *testing.T) {
		url, got := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/cached/HEAD", APIToken: token,
			BuildOnly: true, CloseOnReady: keepReading}).wait(t)
		if want := svc.endpoint() + "gh/org/cached/HEAD?build_only=true"; url != want {
			t.Errorf("client requested %s, want %s", url, want)
		}
		// Not closing on ready, the client reports the server's end of stream.
		assertTranscript(t, got, []string{readyFound(image(reg.Host(), "org", "cached", shaCached)), closedEvent})
	})

	t.Run("full build of the package's fixture", func(t *testing.T) {
		lines := fixtureBuildLines(t)
		c := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/binder-examples/octave/HEAD", APIToken: token,
			BuildOnly: true, CloseOnReady: keepReading})
		pod := waitPod(t, ns, "binder-examples", "octave", shaOctave)
		finishPod(t, ns, pod, testcluster.Succeeded(), lines...)
		_, got := c.wait(t)
		want := append(append([]string{waitingEvent}, lines...),
			readyBuilt(image(reg.Host(), "binder-examples", "octave", shaOctave)), closedEvent)
		assertTranscript(t, got, want)
	})

	t.Run("build failure", func(t *testing.T) {
		c := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/fails/main", APIToken: token, BuildOnly: true})
		pod := waitPod(t, ns, "org", "fails", shaFail)
		finishPod(t, ns, pod, testcluster.Failed(2), append(append([]string{}, r2dLines...), "invalid")...)
		_, got := c.wait(t)
		want := append(append([]string{waitingEvent}, r2dLines...), `{"phase": "unknown", "message": "invalid\n"}`)
		if len(got) != len(want)+1 {
			t.Fatalf("items:\n%s\nwant %d items: %d, then the failed event", strings.Join(got, "\n"), len(want)+1, len(want))
		}
		assertTranscript(t, got[:len(want)], want)
		var last struct {
			Phase, Message string
			StatusCode     *int `json:"status_code"`
		}
		if err := json.Unmarshal([]byte(got[len(want)]), &last); err != nil {
			t.Fatal(err)
		}
		if last.Phase != "failed" || !strings.HasPrefix(last.Message, "Build failed: repo2docker exited with code 2.\n") || last.StatusCode != nil {
			t.Errorf("last item %s, want a failed event saying repo2docker exited with code 2", got[len(want)])
		}
	})

	t.Run("ref containing a slash", func(t *testing.T) {
		c := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/slash/feature/x", APIToken: token, BuildOnly: true})
		pod := waitPod(t, ns, "org", "slash", shaSlash)
		finishPod(t, ns, pod, testcluster.Succeeded(), r2dLines...)
		url, got := c.wait(t)
		if want := svc.endpoint() + "gh/org/slash/feature/x?build_only=true"; url != want {
			t.Errorf("client requested %s, want %s", url, want)
		}
		assertTranscript(t, got, append(append([]string{waitingEvent}, r2dLines...), readyBuilt(image(reg.Host(), "org", "slash", shaSlash))))
	})

	t.Run("bad token", func(t *testing.T) {
		_, got := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/cached/HEAD", APIToken: badToken, BuildOnly: true}).wait(t)
		assertTranscript(t, got, []string{forbidden})
	})

	t.Run("no token", func(t *testing.T) {
		_, got := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/cached/HEAD", BuildOnly: true}).wait(t)
		assertTranscript(t, got, []string{forbidden})
	})

	t.Run("without build_only", func(t *testing.T) {
		url, got := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/cached/HEAD", APIToken: token}).wait(t)
		if want := svc.endpoint() + "gh/org/cached/HEAD"; url != want {
			t.Errorf("client requested %s, want %s", url, want)
		}
		assertTranscript(t, got, []string{`{"phase": "failed", "status_code": 400, "message": "Launching servers is not supported by this service; request build_only=true to build the image without launching it.\n"}`})
	})

	t.Run("build token refused", func(t *testing.T) {
		_, got := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/cached/HEAD", APIToken: token,
			BuildToken: "eyJhbGciOiJIUzI1NiJ9.e30.x", BuildOnly: true}).wait(t)
		assertTranscript(t, got, []string{`{"phase": "failed", "status_code": 403, "message": "Invalid build token\n"}`})
	})

	t.Run("logs hold no token", func(t *testing.T) {
		assertNoSecrets(t, svc.log.String(), token, badToken)
	})
}

// TestBinderhubClientLimits checks the abuse limits as the client sees
// them: rate limit (with its headers) and banned specs.
func TestBinderhubClientLimits(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	reg := testregistry.Start(t, testregistry.Options{})
	const sha = "4444444444444444444444444444444444444444"
	gh := newFakeGitHub(t, map[string]string{"org/repo/HEAD": sha, "evil/repo/HEAD": sha})
	env := buildEnv(t, ns, reg.Host(), gh.URL)
	env["BINDERBUILD_RATE_LIMIT"] = "2"
	env["BINDERBUILD_CORS_ALLOW_ORIGIN"] = "https://hub.example.org"
	svc := startService(t, env)
	pushImage(t, image(reg.Host(), "org", "repo", sha))

	// One request from Go, to see the headers.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, svc.endpoint()+"gh/org/repo/HEAD?build_only=true", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Origin", "https://hub.example.org")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, want := range map[string]string{"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1",
		"Access-Control-Allow-Origin": "https://hub.example.org", "Content-Type": "text/event-stream"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	_, got := runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/repo/HEAD", BuildOnly: true}).wait(t)
	assertTranscript(t, got, []string{readyFound(image(reg.Host(), "org", "repo", sha))})
	_, got = runClient(t, clientOpts{Endpoint: svc.endpoint(), Spec: "gh/org/repo/HEAD", BuildOnly: true}).wait(t)
	assertTranscript(t, got, []string{`{"phase": "failed", "status_code": 429, "message": "Rate limit exceeded. Try again in 3600 seconds.\n"}`})

	// Banned specs are refused after the rate limit (§2), so use a fresh
	// service; banned is checked on the raw spec.
	svc2 := startService(t, func() map[string]string {
		e := buildEnv(t, ns, reg.Host(), gh.URL)
		e["BINDERBUILD_BANNED_SPECS"] = "^evil/.*,^x{1,3}/"
		return e
	}())
	_, got = runClient(t, clientOpts{Endpoint: svc2.endpoint(), Spec: "gh/evil/repo/HEAD", BuildOnly: true}).wait(t)
	assertTranscript(t, got, []string{`{"phase": "failed", "message": "Sorry, evil/repo/HEAD is not allowed to launch. Please contact admins for more info!"}`})
}
