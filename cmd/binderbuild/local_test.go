package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/testdocker"
	"github.com/binderbuild/binderbuild/internal/testgit"
)

var localUpdate = flag.Bool("update-local", false, "rewrite testdata/local-*.golden")

// testEngineHost and testDataDir are set once by TestMain; newEnv passes
// them to every test's service.
var testEngineHost, testDataDir string

// TestMain keeps every test of this package off the machine's own engine,
// $HOME and port 5000: DOCKER_HOST is a socket nobody serves (tests that
// build set their own), the embedded registry listens on a free port and
// keeps its data in a temporary folder.
func TestMain(m *testing.M) {
	if addr := os.Getenv(bareEnv); addr != "" { // BenchmarkWarmHitExternal's reference
		fmt.Fprintln(os.Stderr, serveBare(addr, os.Getenv(bareFrameEnv)))
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "binderbuild-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testEngineHost = "unix://" + filepath.Join(dir, "no-engine.sock")
	testDataDir = filepath.Join(dir, "data")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// noEngineMessage is the failed event's message without a container engine.
func noEngineMessage() string {
	return "No container engine found at " + testEngineHost +
		": install Docker (apt-get install docker.io) or Podman, or set DOCKER_HOST.\n"
}

// freeAddr is a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sseData returns the data lines of an event stream.
func sseData(body string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(l, "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

var (
	normHex     = regexp.MustCompile(`\b[0-9a-f]{7,64}\b`)
	normSlug    = regexp.MustCompile(`/binderbuild/[^:"]+:`)
	normTmp     = regexp.MustCompile(`/tmp/repo2docker[A-Za-z0-9]+`)
	normPort    = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	normContext = regexp.MustCompile(`Sending build context to Docker daemon +[0-9.]+[kMG]?B`)
)

// normalize makes a build's events comparable between runs: ids, ports,
// folders and sizes become placeholders, and the push progress events,
// whose number depends on timing, become one event with the final layers.
func normalize(events []string) string {
	var out []string
	for _, e := range events {
		var m map[string]any
		_ = json.Unmarshal([]byte(e), &m)
		if m["phase"] == "pushing" && m["message"] == "Pushing image\n" {
			layers, _ := m["layers"].(map[string]any)
			var st []string
			for _, v := range layers {
				st = append(st, fmt.Sprint(v))
			}
			e = fmt.Sprintf(`{"message": "Pushing image\n", "layers": %d x %q, "phase": "pushing"}`, len(st), strings.Join(uniq(st), "|"))
			if n := len(out); n > 0 && strings.Contains(out[n-1], `"message": "Pushing image\n"`) {
				out = out[:n-1]
			}
		}
		e = normSlug.ReplaceAllString(e, "/binderbuild/<slug>:")
		e = normHex.ReplaceAllString(e, "<hex>")
		e = normTmp.ReplaceAllString(e, "/tmp/repo2docker<dir>")
		e = normPort.ReplaceAllString(e, "127.0.0.1:<port>")
		e = normContext.ReplaceAllString(e, "Sending build context to Docker daemon <size>")
		out = append(out, e)
	}
	return strings.Join(out, "\n") + "\n"
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *localUpdate {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-local)", err)
	}
	if got != string(want) {
		t.Errorf("events differ from %s (run with -update-local to accept):\ngot\n%s\nwant\n%s", path, got, want)
	}
}

// TestLocalServeBuildCacheRestart builds a repository through the service
// in single-machine mode (no cluster, no image prefix): a real engine runs
// the fake repo2docker, which pushes to the embedded registry. Then a cache
// hit, and another after restarting the service on the same data folder.
func TestLocalServeBuildCacheRestart(t *testing.T) {
	engine := testdocker.Start(t)
	git := testgit.Start(t)
	var nonce [8]byte
	_, _ = rand.Read(nonce[:]) // a fresh layer, not the engine's build cache
	repoURL, sha := git.Repo(t, "demo", map[string]string{
		"Dockerfile": "FROM " + engine.BaseImage(t) + "\nRUN echo " + hex.EncodeToString(nonce[:]) + " > /built\n",
	})
	registry := freeAddr(t)
	env := newEnv().merge(map[string]string{
		"DOCKER_HOST":                          engine.Host,
		"KUBECONFIG":                           "",
		"BINDERBUILD_EXECUTOR":                 "auto",
		"BINDERBUILD_IMAGE_PREFIX":             "",
		"BINDERBUILD_BUILD_IMAGE":              engine.Repo2dockerImage(t),
		"BINDERBUILD_BUILD_NETWORK":            "host", // the git server is on 127.0.0.1
		"BINDERBUILD_DATA_DIR":                 t.TempDir(),
		"BINDERBUILD_EMBEDDED_REGISTRY_LISTEN": registry,
		"BINDERBUILD_GIT_ALLOWED_HOSTS":        git.Host,
		"BINDERBUILD_REGISTRY_NEGATIVE_TTL":    "1ms",
		"BINDERBUILD_GC_SCHEDULE":              "",
	})
	path := "/build/git/" + url.PathEscape(repoURL) + "/main?build_only=true"
	var image string
	t.Run("build", func(t *testing.T) {
		base := serveT(t, env)
		events := sseData(stream(t, base+path, "text/event-stream"))
		golden(t, "local-build.golden", normalize(events))
		var ready struct{ Phase, ImageName string }
		_ = json.Unmarshal([]byte(events[len(events)-1]), &ready)
		if ready.Phase != "ready" || !strings.HasPrefix(ready.ImageName, registry+"/binderbuild/") || !strings.HasSuffix(ready.ImageName, ":"+sha) {
			t.Fatalf("last event %s, want ready with image %s/binderbuild/...:%s", events[len(events)-1], registry, sha)
		}
		image = ready.ImageName
		ref, err := name.ParseReference(image)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(ref, remote.WithContext(t.Context())); err != nil {
			t.Fatalf("image %s not in the embedded registry: %v", image, err)
		}
		// The engine pulls it back: a complete image.
		if _, err := engine.Client.ImageRemove(t.Context(), image, client.ImageRemoveOptions{}); err != nil {
			t.Fatal(err)
		}
		pull, err := engine.Client.ImagePull(t.Context(), image, client.ImagePullOptions{})
		if err == nil {
			err = pull.Wait(t.Context())
			pull.Close()
		}
		if err != nil {
			t.Fatalf("engine pull of %s: %v", image, err)
		}
		if got, want := stream(t, base+path, "text/event-stream"), cacheHit(image); got != want {
			t.Errorf("second request:\n%s\nwant\n%s", got, want)
		}
	})
	if image == "" {
		return
	}
	t.Run("restart", func(t *testing.T) {
		base := serveT(t, env)
		if got, want := stream(t, base+path, "text/event-stream"), cacheHit(image); got != want {
			t.Errorf("after a restart:\n%s\nwant\n%s", got, want)
		}
	})
	res, err := engine.Client.ContainerList(t.Context(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", "component=binderhub-build")})
	if err != nil || len(res.Items) != 0 {
		t.Errorf("build containers left: %d (%v)", len(res.Items), err)
	}
}

// cacheHit is the whole stream of a request for a built image.
func cacheHit(image string) string {
	return "data: " + `{"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n"
}

// TestLocalServeNoEngine starts the service without a cluster and without
// an engine: it serves cache hits from the embedded registry, reports the
// engine in /health without failing it, and fails builds saying what to
// install.
func TestLocalServeNoEngine(t *testing.T) {
	f := newFixture(t)
	env := f.env
	registry := freeAddr(t)
	env.set("BINDERBUILD_IMAGE_PREFIX", "")
	env.set("BINDERBUILD_EMBEDDED_REGISTRY_LISTEN", registry)
	env.set("BINDERBUILD_DATA_DIR", t.TempDir())
	base := serveT(t, env)
	image := binderbuild.ImageName(registry+"/binderbuild/", "org-repo", headSHA)
	f.push(t, image)
	if got, want := stream(t, base+"/build/gh/org/repo/HEAD?build_only=true", "text/event-stream"), cacheHit(image); got != want {
		t.Errorf("cache hit:\n%s\nwant\n%s", got, want)
	}
	got := stream(t, base+"/build/git/https%3A%2F%2Fexample.com%2Forg%2Fother/"+headSHA+"?build_only=true", "text/event-stream")
	want := "data: " + `{"phase": "waiting", "message": "Waiting for build to start...\n"}` + "\n\n" +
		"data: " + `{"phase": "failed", "message": "` + strings.TrimSuffix(noEngineMessage(), "\n") + `\n"}` + "\n\n"
	if got != want {
		t.Errorf("build:\n%q\nwant\n%q", got, want)
	}
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var h struct {
		OK     bool
		Checks []struct {
			Service string
			OK      bool
			Error   string
		}
	}
	_ = json.Unmarshal(body, &h)
	found := false
	for _, c := range h.Checks {
		if c.Service == "Container engine" {
			found = true
			if c.OK || !strings.Contains(c.Error, "No container engine found") {
				t.Errorf("/health engine check = %+v, want not ok, saying no engine was found", c)
			}
		}
	}
	if resp.StatusCode != http.StatusOK || !found {
		t.Errorf("/health = %d %s, want 200 with a Container engine check", resp.StatusCode, body)
	}
}
