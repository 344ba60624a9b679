package launcher_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/testhub"
	"github.com/binderbuild/binderbuild/launcher"
)

const repoURL = "https://github.com/binder-examples/requirements"

func request(image string) binderbuild.LaunchRequest {
	return binderbuild.LaunchRequest{
		Image: image, RepoURL: repoURL,
		RefURL:            repoURL + "/tree/5555555555555555555555555555555555555555",
		LaunchHost:        "http://binder.test/",
		Request:           "v2/gh/binder-examples/requirements/HEAD",
		PersistentRequest: "v2/gh/binder-examples/requirements/5555555555555555555555555555555555555555",
		ClientIP:          "127.0.0.1",
	}
}

func newLauncher(t *testing.T, hub *testhub.Hub, cfg launcher.Config) *launcher.Launcher {
	t.Helper()
	cfg.HubURL = hub.URL
	cfg.HubAPIURL = hub.APIURL
	cfg.HubAPIToken = hub.Token
	if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 10 * time.Millisecond
	}
	l, err := launcher.New(cfg, &http.Client{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// launch runs one attempt and returns its result and progress messages.
func launch(t *testing.T, l *launcher.Launcher, req binderbuild.LaunchRequest) (binderbuild.Launched, []string, error) {
	t.Helper()
	var msgs []string
	srv, err := l.Launch(t.Context(), req, func(m string) { msgs = append(msgs, m) })
	return srv, msgs, err
}

var tempUser = regexp.MustCompile(`^binder-examples-requirements-[a-z0-9]{8}$`)

func TestLaunchTemporaryUsers(t *testing.T) {
	hub := testhub.Start(t, testhub.Options{})
	l := newLauncher(t, hub, launcher.Config{})

	t.Run("ready server answers with the token", func(t *testing.T) {
		req := request("registry.test/binder-examples-requirements:5555")
		srv, msgs, err := launch(t, l, req)
		if err != nil {
			t.Fatalf("Launch: %v\n%s", err, hub.Log())
		}
		if !tempUser.MatchString(srv.User) || srv.Server != "" {
			t.Errorf("user, server = %q, %q; want binder-examples-requirements-<8>, \"\"", srv.User, srv.Server)
		}
		if want := hub.URL + "user/" + srv.User + "/"; srv.URL != want {
			t.Errorf("URL = %q, want %q", srv.URL, want)
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(srv.Token) {
			t.Errorf("token %q is not 22 URL-safe base64 characters", srv.Token)
		}
		want := []string{"Server requested", "Spawning server...", "Server ready at /user/" + srv.User + "/"}
		if !slices.Equal(msgs, want) {
			t.Errorf("progress = %q, want %q", msgs, want)
		}
		opts := hub.UserOptions(t, srv.User, "")
		wantOpts := map[string]any{
			"image": req.Image, "repo_url": repoURL, "token": srv.Token,
			"binder_ref_url": req.RefURL, "binder_launch_host": req.LaunchHost, "binder_request": req.Request,
			"binder_persistent_request": req.PersistentRequest, "binder_client_ip": req.ClientIP,
		}
		if !reflect.DeepEqual(opts, wantOpts) {
			t.Errorf("user_options = %v, want %v", opts, wantOpts)
		}
		if status := serverStatus(t, srv.URL, srv.Token); status != http.StatusOK {
			t.Errorf("GET %sapi/status with the token = %d, want 200", srv.URL, status)
		}
		if status := serverStatus(t, srv.URL, "not-the-token"); status != http.StatusForbidden {
			t.Errorf("GET %sapi/status with another token = %d, want 403", srv.URL, status)
		}
	})

	t.Run("spawner fails: temporary user deleted", func(t *testing.T) {
		users := hub.Users(t)
		image := "registry.test/spawnfails:1"
		_, msgs, err := launch(t, l, request(image))
		assertLaunchError(t, err, 500, "Spawn failed: the test spawner refuses "+image)
		if want := []string{"Spawn failed: the test spawner refuses " + image}; !slices.Equal(msgs, want) {
			t.Errorf("progress = %q, want %q", msgs, want)
		}
		hub.WaitUsers(t, users) // the temporary user deleted
	})

	t.Run("launch timeout: temporary user deleted", func(t *testing.T) {
		users := hub.Users(t)
		l := newLauncher(t, hub, launcher.Config{LaunchTimeout: 2 * time.Second})
		image := "registry.test/spawnhangs:1"
		_, _, err := launch(t, l, request(image))
		le := assertLaunchError(t, err, 500, "")
		if m := regexp.MustCompile(`^Image registry.test/spawnhangs:1 for user binder-examples-requirements-[a-z0-9]{8} took too long to launch$`); le != nil && !m.MatchString(le.Message) {
			t.Errorf("message = %q, want %s", le.Message, m)
		}
		hub.WaitUsers(t, users) // once the hub's start timeout ended the spawn
	})

	t.Run("authenticated user with a running server", func(t *testing.T) {
		hub.CreateUser(t, "alice")
		req := request("registry.test/binder-examples-requirements:5555")
		req.User = "alice"
		srv, _, err := launch(t, l, req)
		if err != nil {
			t.Fatalf("first launch: %v", err)
		}
		if srv.URL != hub.URL+"user/alice/" || srv.User != "alice" {
			t.Errorf("launched %+v, want alice's default server", srv)
		}
		_, _, err = launch(t, l, req)
		assertLaunchError(t, err, 409, "User alice already has a running server.")
		if !slices.Contains(hub.Users(t), "alice") {
			t.Error("an authenticated user was deleted after a refused launch")
		}
	})

	t.Run("hub down", func(t *testing.T) {
		down, err := launcher.New(launcher.Config{HubURL: hub.URL, HubAPIURL: "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/hub/api/",
			HubAPIToken: hub.Token, Retries: 3, RetryDelay: time.Millisecond}, &http.Client{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		image := "registry.test/binder-examples-requirements:5555"
		_, _, err = launch(t, down, request(image))
		assertLaunchError(t, err, 500, "Failed to create temporary user for "+image)
	})
}

func TestLaunchNamedServers(t *testing.T) {
	hub := testhub.Start(t, testhub.Options{NamedServers: true, NamedServerLimit: 1})
	l := newLauncher(t, hub, launcher.Config{AllowNamedServers: true, NamedServerLimitPerUser: 1})
	hub.CreateUser(t, "bob")
	req := request("registry.test/binder-examples-requirements:5555")
	req.User = "bob"

	srv, _, err := launch(t, l, req)
	if err != nil {
		t.Fatalf("first launch: %v\n%s", err, hub.Log())
	}
	if !tempUser.MatchString(srv.Server) || srv.User != "bob" {
		t.Errorf("user, server = %q, %q; want bob, binder-examples-requirements-<8>", srv.User, srv.Server)
	}
	if want := hub.URL + "user/bob/" + srv.Server + "/"; srv.URL != want {
		t.Errorf("URL = %q, want %q", srv.URL, want)
	}
	if got := hub.UserOptions(t, "bob", srv.Server)["token"]; got != srv.Token {
		t.Errorf("user_options token = %v, want %s", got, srv.Token)
	}
	if status := serverStatus(t, srv.URL, srv.Token); status != http.StatusOK {
		t.Errorf("GET %sapi/status with the token = %d, want 200", srv.URL, status)
	}

	_, _, err = launch(t, l, req)
	assertLaunchError(t, err, 409, "User bob already has the maximum of 1 named servers.  One must be deleted before a new server can be created")
}

func assertLaunchError(t *testing.T, err error, code int, msg string) *binderbuild.LaunchError {
	t.Helper()
	var le *binderbuild.LaunchError
	if !errors.As(err, &le) {
		t.Fatalf("error = %v, want a *binderbuild.LaunchError", err)
	}
	if le.Code != code || (msg != "" && le.Message != msg) {
		t.Errorf("LaunchError = %d %q, want %d %q", le.Code, le.Message, code, msg)
	}
	return le
}

// serverStatus returns the status of GET <url>api/status with token.
func serverStatus(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"api/status", nil)
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// closedPort returns a loopback port nothing listens on any more.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
