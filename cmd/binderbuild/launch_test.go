package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/testdocker"
	"github.com/binderbuild/binderbuild/internal/testgit"
	"github.com/binderbuild/binderbuild/internal/testhub"
)

// launchEnv sets the environment of a service in launch mode with hub.
func launchEnv(env testEnv, hubURL, apiURL, token string) {
	env.set("BINDERBUILD_API_ONLY", "false")
	env.set("BINDERBUILD_HUB_URL", hubURL)
	env.set("BINDERBUILD_HUB_API_TOKEN", token)
	env.set("JUPYTERHUB_API_URL", apiURL)
	env.set("BINDERBUILD_RETRIES", "2")
	env.set("BINDERBUILD_RETRY_DELAY", "10ms")
}

// normUser replaces the temporary user's random suffix.
var normUser = regexp.MustCompile(`-[a-z0-9]{8}\b`)

// launchTranscript is the stream of a launch of image for org/<repo> by a
// temporary user, normalised with normUser, up to the ready event.
func launchTranscript(image, repo, hubURL, host string) []string {
	user := "org-" + repo + "-<u>"
	return []string{
		`{"phase": "built", "imageName": "` + image + `", "message": "Found built image, launching...\n"}`,
		`{"phase": "launching", "message": "Launching server...\n"}`,
		`{"phase": "launching", "message": "Server requested\n"}`,
		`{"phase": "launching", "message": "Spawning server...\n"}`,
		`{"phase": "launching", "message": "Server ready at /user/` + user + `/\n"}`,
		`{"phase": "ready", "message": "server running at ` + hubURL + `user/` + user + `/\n", "image": "` + image + `", "imageName": "` + image +
			`", "repo_url": "https://github.com/org/` + repo + `", "token": "<token>", "binder_ref_url": "https://github.com/org/` + repo + `/tree/` + headSHA +
			`", "binder_launch_host": "http://` + host + `/", "binder_request": "v2/gh/org/` + repo + `/HEAD", "binder_persistent_request": "v2/gh/org/` + repo + `/` + headSHA +
			`", "binder_client_ip": "127.0.0.1", "url": "` + hubURL + `user/` + user + `/"}`,
	}
}

var normToken = regexp.MustCompile(`"token": "[A-Za-z0-9_-]{22}"`)

func assertTranscript(t *testing.T, got, want []string) {
	t.Helper()
	norm := make([]string, len(got))
	for i, l := range got {
		norm[i] = normToken.ReplaceAllString(normUser.ReplaceAllString(l, "-<u>"), `"token": "<token>"`)
	}
	if strings.Join(norm, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(norm, "\n"), strings.Join(want, "\n"))
	}
}

// TestServeLaunch launches through the real wiring and a real JupyterHub
// whose spawner starts Debian's jupyterhub-singleuser.
func TestServeLaunch(t *testing.T) {
	f := newFixture(t)
	env := f.env
	hub := testhub.Start(t, testhub.Options{})
	launchEnv(env, hub.URL, hub.APIURL, hub.Token)
	base := serveT(t, env)
	host := strings.TrimPrefix(base, "http://")
	if status, body := get(t, base+"/health"); status != http.StatusOK || !strings.Contains(body, `{"service":"JupyterHub API","ok":true,`) {
		t.Errorf("GET /health = %d %s, want 200 with JupyterHub API ok", status, body)
	}

	t.Run("cache hit then launch; the server answers with the token", func(t *testing.T) {
		image := binderbuild.ImageName(f.prefix, "org-repo", headSHA)
		got := sseData(stream(t, base+"/build/gh/org/repo/HEAD", "text/event-stream"))
		assertTranscript(t, got, launchTranscript(image, "repo", hub.URL, host))
		var ready struct{ URL, Token string }
		if err := json.Unmarshal([]byte(got[len(got)-1]), &ready); err != nil {
			t.Fatal(err)
		}
		if status := testhub.ServerStatus(t, ready.URL, ready.Token); status != http.StatusOK {
			t.Errorf("GET %sapi/status with the token = %d, want 200", ready.URL, status)
		}
		user := strings.TrimSuffix(strings.TrimPrefix(ready.URL, hub.URL+"user/"), "/")
		if opts := hub.UserOptions(t, user, ""); opts["image"] != image || opts["token"] != ready.Token || opts["binder_request"] != "v2/gh/org/repo/HEAD" {
			t.Errorf("user_options = %v, want image %s, the token and binder_request v2/gh/org/repo/HEAD", opts, image)
		}
	})

	t.Run("spawner fails: retried, temporary users deleted", func(t *testing.T) {
		users := hub.Users(t)
		image := binderbuild.ImageName(f.prefix, "org-spawnfails", headSHA)
		f.push(t, image)
		got := sseData(stream(t, base+"/build/gh/org/spawnfails/HEAD", "text/event-stream"))
		fail := "Spawn failed: the test spawner refuses " + image
		assertTranscript(t, got, []string{
			`{"phase": "built", "imageName": "` + image + `", "message": "Found built image, launching...\n"}`,
			`{"phase": "launching", "message": "Launching server...\n"}`,
			`{"phase": "launching", "message": "` + fail + `\n"}`,
			`{"phase": "launching", "message": "Launch attempt 1 failed, retrying...\n"}`,
			`{"phase": "launching", "message": "` + fail + `\n"}`,
			`{"phase": "failed", "status_code": 500, "message": "` + fail + `\n"}`,
		})
		hub.WaitUsers(t, users)
	})

	t.Run("launch timeout", func(t *testing.T) {
		base := serveT(t, env.with(map[string]string{"BINDERBUILD_LAUNCH_TIMEOUT": "2s"}))
		image := binderbuild.ImageName(f.prefix, "org-spawnhangs", headSHA)
		f.push(t, image)
		got := sseData(stream(t, base+"/build/gh/org/spawnhangs/HEAD", "text/event-stream"))
		timeout := "Image " + image + " for user org-spawnhangs-<u> took too long to launch"
		assertTranscript(t, got, []string{
			`{"phase": "built", "imageName": "` + image + `", "message": "Found built image, launching...\n"}`,
			`{"phase": "launching", "message": "Launching server...\n"}`,
			`{"phase": "launching", "message": "Server requested\n"}`,
			`{"phase": "launching", "message": "Spawning server...\n"}`,
			`{"phase": "launching", "message": "Launch attempt 1 failed, retrying...\n"}`,
			`{"phase": "launching", "message": "Server requested\n"}`,
			`{"phase": "launching", "message": "Spawning server...\n"}`,
			`{"phase": "failed", "status_code": 500, "message": "` + timeout + `\n"}`,
		})
	})
}

// TestServeLaunchHubDown launches with a hub that does not answer.
func TestServeLaunchHubDown(t *testing.T) {
	f := newFixture(t)
	env := f.env
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	launchEnv(env, "http://127.0.0.1:"+port+"/", "http://127.0.0.1:"+port+"/hub/api/", "token-of-a-hub-that-is-down")
	base := serveT(t, env)
	if status, body := get(t, base+"/health"); status != http.StatusServiceUnavailable || !strings.Contains(body, `{"service":"JupyterHub API","ok":false,`) {
		t.Errorf("GET /health = %d %s, want 503 with JupyterHub API not ok", status, body)
	}
	image := binderbuild.ImageName(f.prefix, "org-repo", headSHA)
	got := sseData(stream(t, base+"/build/gh/org/repo/HEAD", "text/event-stream"))
	assertTranscript(t, got, []string{
		`{"phase": "built", "imageName": "` + image + `", "message": "Found built image, launching...\n"}`,
		`{"phase": "launching", "message": "Launching server...\n"}`,
		`{"phase": "launching", "message": "Launch attempt 1 failed, retrying...\n"}`,
		`{"phase": "failed", "status_code": 500, "message": "Failed to create temporary user for ` + image + `\n"}`,
	})
}

// streamUntilEnd reads the data lines of a stream until its ready or
// failed event and leaves: after a build and a launch the service lingers.
// header is name, value pairs.
func streamUntilEnd(t *testing.T, url string, header ...string) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
			if strings.Contains(d, `"phase": "ready"`) || strings.Contains(d, `"phase": "failed"`) {
				break
			}
		}
	}
	return out
}

// TestLocalServeBuildThenLaunch builds with the local executor on a real
// engine, then launches the image through a real JupyterHub.
func TestLocalServeBuildThenLaunch(t *testing.T) {
	engine := testdocker.Start(t)
	git := testgit.Start(t)
	var nonce [8]byte
	_, _ = rand.Read(nonce[:]) // a fresh layer, not the engine's build cache
	repoURL, _ := git.Repo(t, "demo", map[string]string{
		"Dockerfile": "FROM " + engine.BaseImage(t) + "\nRUN echo " + hex.EncodeToString(nonce[:]) + " > /built\n",
	})
	hub := testhub.Start(t, testhub.Options{})
	env := newEnv().merge(map[string]string{
		"DOCKER_HOST":                          engine.Host,
		"KUBECONFIG":                           "",
		"BINDERBUILD_EXECUTOR":                 "local",
		"BINDERBUILD_IMAGE_PREFIX":             "",
		"BINDERBUILD_BUILD_IMAGE":              engine.Repo2dockerImage(t),
		"BINDERBUILD_BUILD_NETWORK":            "host", // the git server is on 127.0.0.1
		"BINDERBUILD_DATA_DIR":                 t.TempDir(),
		"BINDERBUILD_EMBEDDED_REGISTRY_LISTEN": freeAddr(t),
		"BINDERBUILD_GIT_ALLOWED_HOSTS":        git.Host,
		"BINDERBUILD_GC_SCHEDULE":              "",
	})
	launchEnv(env, hub.URL, hub.APIURL, hub.Token)
	base := serveT(t, env)
	events := streamUntilEnd(t, base+"/build/git/"+url.PathEscape(repoURL)+"/main")
	i := slices.IndexFunc(events, func(e string) bool { return strings.HasPrefix(e, `{"phase": "built"`) })
	if i < 0 {
		t.Fatalf("no built event:\n%s", strings.Join(events, "\n"))
	}
	// The build's events are those of a build-only request, up to its ready.
	want, err := os.ReadFile("testdata/local-build.golden")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(want), "\n"), "\n")
	wantBuild := strings.Join(lines[:len(lines)-1], "\n") + "\n"
	if got := normalize(events[:i]); got != wantBuild {
		t.Errorf("build events:\n%s\nwant:\n%s", got, wantBuild)
	}
	var built struct{ ImageName string }
	_ = json.Unmarshal([]byte(events[i]), &built)
	user := "demo-<u>"
	var ready struct {
		URL          string
		BinderRefURL string `json:"binder_ref_url"`
	}
	_ = json.Unmarshal([]byte(events[len(events)-1]), &ready)
	sha := built.ImageName[strings.LastIndex(built.ImageName, ":")+1:]
	spec := url.PathEscape(repoURL) + "/main"
	host := strings.TrimPrefix(base, "http://")
	assertTranscript(t, events[i:], []string{
		`{"phase": "built", "message": "Built image, launching...\n", "imageName": "` + built.ImageName + `"}`,
		`{"phase": "launching", "message": "Launching server...\n"}`,
		`{"phase": "launching", "message": "Server requested\n"}`,
		`{"phase": "launching", "message": "Spawning server...\n"}`,
		`{"phase": "launching", "message": "Server ready at /user/` + user + `/\n"}`,
		`{"phase": "ready", "message": "server running at ` + hub.URL + `user/` + user + `/\n", "image": "` + built.ImageName + `", "imageName": "` + built.ImageName +
			`", "repo_url": "` + repoURL + `", "token": "<token>", "binder_ref_url": "` + ready.BinderRefURL +
			`", "binder_launch_host": "http://` + host + `/", "binder_request": "v2/git/` + spec + `", "binder_persistent_request": "v2/git/` + url.PathEscape(repoURL) + `/` + sha +
			`", "binder_client_ip": "127.0.0.1", "url": "` + hub.URL + `user/` + user + `/"}`,
	})
	if got := hub.UserOptions(t, strings.TrimSuffix(strings.TrimPrefix(ready.URL, hub.URL+"user/"), "/"), "")["image"]; got != built.ImageName {
		t.Errorf("the spawner got image %v, want %s", got, built.ImageName)
	}
}

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeLaunchNamedServers launches named servers of an authenticated hub
// user until the hub's limit.
func TestServeLaunchNamedServers(t *testing.T) {
	f := newFixture(t)
	env := f.env
	const bobToken = "bob-token-0123456789abcdef"
	hub := testhub.Start(t, testhub.Options{NamedServers: true, NamedServerLimit: 1, UserTokens: map[string]string{bobToken: "bob"}})
	launchEnv(env, hub.URL, hub.APIURL, hub.Token)
	env.set("BINDERBUILD_AUTH", "jupyterhub")
	env.set("BINDERBUILD_ALLOW_NAMED_SERVERS", "true")
	env.set("BINDERBUILD_NAMED_SERVER_LIMIT_PER_USER", "1")
	base := serveT(t, env)
	image := binderbuild.ImageName(f.prefix, "org-repo", headSHA)

	first := streamUntilEnd(t, base+"/build/gh/org/repo/HEAD", "Authorization", "token "+bobToken)
	var ready struct{ Phase, URL string }
	_ = json.Unmarshal([]byte(first[len(first)-1]), &ready)
	if ready.Phase != "ready" || !regexp.MustCompile(`/user/bob/org-repo-[a-z0-9]{8}/$`).MatchString(ready.URL) {
		t.Fatalf("first launch ended with %s, want ready at bob's named server", first[len(first)-1])
	}
	second := streamUntilEnd(t, base+"/build/gh/org/repo/HEAD", "Authorization", "token "+bobToken)
	limit := "User bob already has the maximum of 1 named servers.  One must be deleted before a new server can be created"
	assertTranscript(t, second, []string{
		`{"phase": "built", "imageName": "` + image + `", "message": "Found built image, launching...\n"}`,
		`{"phase": "launching", "message": "Launching server...\n"}`,
		`{"phase": "launching", "message": "Launch attempt 1 failed, retrying...\n"}`,
		`{"phase": "failed", "status_code": 409, "message": "` + limit + `\n"}`,
	})
}

// TestJupyterHubFallbacks: what JupyterHub gives its services fills the
// hub settings, and a BINDERBUILD_ variable beats it.
func TestJupyterHubFallbacks(t *testing.T) {
	hub := map[string]string{
		"JUPYTERHUB_API_URL": "http://hub:8081/hub/api/", "JUPYTERHUB_ALLOW_NAMED_SERVERS": "true",
		"JUPYTERHUB_NAMED_SERVER_LIMIT_PER_USER": "5", "JUPYTERHUB_SERVICE_NAME": "binder",
	}
	type hubSettings struct {
		authAPI, launchAPI string
		named              bool
		limit              int
		scopes             string
	}
	tests := []struct {
		name string
		env  map[string]string
		want hubSettings
	}{
		{"JupyterHub's", nil, hubSettings{"http://hub:8081/hub/api/", "http://hub:8081/hub/api/", true, 5, "access:services!service=binder"}},
		{"own settings win", map[string]string{
			"BINDERBUILD_JUPYTERHUB_API_URL": "http://auth/", "BINDERBUILD_HUB_API_URL": "http://launch/", "BINDERBUILD_ALLOW_NAMED_SERVERS": "false",
			"BINDERBUILD_NAMED_SERVER_LIMIT_PER_USER": "2", "BINDERBUILD_JUPYTERHUB_SERVICE_NAME": "other",
		}, hubSettings{"http://auth/", "http://launch/", false, 2, "access:services!service=other"}},
		{"empty own settings fall back", map[string]string{
			"BINDERBUILD_JUPYTERHUB_API_URL": "", "BINDERBUILD_HUB_API_URL": "", "BINDERBUILD_ALLOW_NAMED_SERVERS": "",
			"BINDERBUILD_NAMED_SERVER_LIMIT_PER_USER": "", "BINDERBUILD_JUPYTERHUB_SERVICE_NAME": "",
		}, hubSettings{"http://hub:8081/hub/api/", "http://hub:8081/hub/api/", true, 5, "access:services!service=binder"}},
		{"access scopes before the service name", map[string]string{"JUPYTERHUB_OAUTH_ACCESS_SCOPES": `["a", "b"]`, "JUPYTERHUB_OAUTH_SCOPES": `["c"]`},
			hubSettings{"http://hub:8081/hub/api/", "http://hub:8081/hub/api/", true, 5, "a,b"}},
		{"required scopes win, unparsed", map[string]string{"BINDERBUILD_REQUIRED_SCOPES": "z", "JUPYTERHUB_OAUTH_ACCESS_SCOPES": "not JSON"},
			hubSettings{"http://hub:8081/hub/api/", "http://hub:8081/hub/api/", true, 5, "z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(newEnv().merge(hub).merge(tc.env).lookup)
			if err != nil {
				t.Fatal(err)
			}
			got := hubSettings{cfg.JupyterhubApiUrl, cfg.HubAPIURL, cfg.AllowNamedServers, cfg.NamedServerLimitPerUser, strings.Join(cfg.RequiredScopes, ",")}
			if got != tc.want {
				t.Errorf("hub settings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestInvalidJupyterHubSettings: a bad value JupyterHub's variables give is
// one error line naming the variable that held it.
func TestInvalidJupyterHubSettings(t *testing.T) {
	for _, tc := range []struct{ env, value, want string }{
		{"JUPYTERHUB_NAMED_SERVER_LIMIT_PER_USER", "many", `invalid JUPYTERHUB_NAMED_SERVER_LIMIT_PER_USER="many": strconv.ParseInt: parsing "many": invalid syntax`},
		{"JUPYTERHUB_ALLOW_NAMED_SERVERS", "yes", `invalid JUPYTERHUB_ALLOW_NAMED_SERVERS="yes": strconv.ParseBool: parsing "yes": invalid syntax`},
		{"JUPYTERHUB_OAUTH_SCOPES", "access:services", `invalid JUPYTERHUB_OAUTH_SCOPES="access:services": want a JSON list of scopes`},
	} {
		_, err := loadConfig(newEnv().merge(map[string]string{tc.env: tc.value}).lookup)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s=%q: %v, want an error starting %q", tc.env, tc.value, err, tc.want)
		}
	}
}
