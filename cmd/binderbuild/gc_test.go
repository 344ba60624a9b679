package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/binderbuild/binderbuild/internal/testregistry"
	"github.com/binderbuild/binderbuild/registry/gc"
)

var gcUpdate = flag.Bool("update-gc", false, "rewrite testdata/gc-*.golden")

// gcImage is an image the CLI tests push.
type gcImage struct {
	repo, tag string
	age       time.Duration
	layer     int // bytes
	digest    string
}

// gcFill pushes images to host with creation times relative to now
// (truncated to seconds so that config sizes, hence image sizes, are
// stable) and returns them by tag.
func gcFill(t *testing.T, host string, images ...gcImage) map[string]*gcImage {
	t.Helper()
	now := time.Now().Truncate(time.Second).UTC()
	out := make(map[string]*gcImage)
	for _, im := range images {
		l := static.NewLayer(bytes.Repeat([]byte(im.tag+"."), im.layer)[:im.layer], types.DockerLayer)
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Created = v1.Time{Time: now.Add(-im.age)}
		cf.OS, cf.Architecture = "linux", "amd64"
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host + "/" + im.repo + ":" + im.tag)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, _ := img.Digest()
		im.digest = d.String()
		out[im.tag] = &im
	}
	return out
}

// gcExists HEADs host/repo@digest: true found, false 404.
func gcExists(t *testing.T, host string, im *gcImage) bool {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + im.repo + "@" + im.digest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(ref, remote.WithContext(t.Context()))
	var terr *transport.Error
	switch {
	case err == nil:
		return true
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return false
	}
	t.Fatalf("HEAD %s: %v", ref, err)
	return false
}

// gcEnv is a lookup over m.
func gcEnv(m map[string]string) lookupFunc { return mapLookup(m) }

// gcImages are five images from 60 days to 36 hours old under the prefix
// "<host>/binder/r2d-", and one outside it.
func gcImages() []gcImage {
	const day = 24 * time.Hour
	return []gcImage{
		{repo: "binder/r2d-alpha-aaaaaa", tag: "old", age: 45*day + 12*time.Hour, layer: 3000},
		{repo: "binder/r2d-alpha-aaaaaa", tag: "new", age: 3*day + 12*time.Hour, layer: 2000},
		{repo: "binder/r2d-beta-bbbbbb", tag: "older", age: 60*day + 12*time.Hour, layer: 5000},
		{repo: "binder/r2d-ci-2drepos-cccccc", tag: "ci", age: 5*day + 12*time.Hour, layer: 1000},
		{repo: "binder/r2d-ci-2drepos-cccccc", tag: "ci-fresh", age: 36*time.Hour + 30*time.Minute, layer: 500},
		{repo: "binder/other", tag: "outside", age: 90 * day, layer: 100},
	}
}

func TestGCHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		err := gcCommand(t.Context(), []string{arg}, gcEnv(map[string]string{"BINDERBUILD_GC_MAX_AGE": "30d"}), &stdout, &stderr)
		if err != nil || stderr.Len() != 0 {
			t.Fatalf("gc %s = %v, stderr %q; want nil, empty", arg, err, stderr.String())
		}
		help := stdout.String()
		for _, want := range []string{
			"DRY RUN IS THE DEFAULT", "--max-age=DURATION", "30d, 12h, 90m, 2w", "(now: 30d)", "--keep=N",
			"--max-total-size=SIZE", "500Gi, 1.5T, 200M", "--aggressive=ORDER", `"largest"`, `"oldest"`,
			"--pattern=REGEXP", "--purge", "--confirm-purge=PREFIX", "--min-age=DURATION", "--protect-running",
			"--delete", "--workers=N", "--json", "--image-prefix", "--insecure-registry", "its own garbage collection",
			"BINDERBUILD_GC_PATTERNS", "BINDERBUILD_GC_SCHEDULE", "Examples:",
		} {
			if !strings.Contains(help, want) {
				t.Errorf("gc %s does not mention %q", arg, want)
			}
		}
	}
}

func TestGCUsageErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"BINDERBUILD_IMAGE_PREFIX": "127.0.0.1:1/binder/r2d-"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // in the message
	}{
		{"duration without unit", []string{"--max-age=30"}, env, "max-age"},
		{"bad duration", []string{"--min-age=soon"}, env, "min-age"},
		{"negative duration", []string{"--max-age=-1d"}, env, "max-age"},
		{"bad size", []string{"--max-total-size=lots"}, env, "max-total-size"},
		{"bad size unit", []string{"--max-total-size=10Gb"}, env, "want a Kubernetes quantity"},
		{"size in old units", []string{"--max-total-size=10GB"}, env, `size "10GB": sizes are Kubernetes quantities now; write 10G`},
		{"negative Go duration", []string{"--max-age=-1h"}, env, "max-age"},
		{"bad aggressive", []string{"--aggressive=smallest"}, env, `"largest" or "oldest"`},
		{"negative keep", []string{"--keep=-1"}, env, "keep"},
		{"bad workers", []string{"--workers=many"}, env, "workers"},
		{"bad pattern", []string{"--pattern=("}, env, "pattern"},
		{"unknown flag", []string{"--max-size=1G"}, env, "max-size"},
		{"argument", []string{"now"}, env, "no arguments"},
		{"no prefix", nil, nil, "BINDERBUILD_IMAGE_PREFIX"},
		{"purge unconfirmed", []string{"--purge"}, env, "--confirm-purge"},
		{"purge wrongly confirmed", []string{"--purge", "--confirm-purge=127.0.0.1:1/binder/"}, env, "does not equal"},
		{"purge confirmed in other case", []string{"--purge", "--confirm-purge=127.0.0.1:1/BINDER/r2d-"}, env, "does not equal"},
		{"confirmation without purge", []string{"--confirm-purge=127.0.0.1:1/binder/r2d-"}, env, "without --purge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := gcCommand(t.Context(), tc.args, gcEnv(tc.env), &stdout, &stderr)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("gc %q = %v, want a usageError mentioning %q", tc.args, err, tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("gc %q printed %q to stdout, want nothing", tc.args, stdout.String())
			}
		})
	}
	t.Run("bad variable", func(t *testing.T) {
		err := gcCommand(t.Context(), nil, gcEnv(map[string]string{"BINDERBUILD_GC_MAX_TOTAL_SIZE": "big"}), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "BINDERBUILD_GC_MAX_TOTAL_SIZE") {
			t.Errorf("gc with BINDERBUILD_GC_MAX_TOTAL_SIZE=big = %v, want an error naming the variable", err)
		}
	})
}

// sanitize replaces the registry host and digests, which change from run to
// run, keeping column widths.
func sanitize(s, host string) string {
	s = strings.ReplaceAll(s, host, "REGISTRY")
	return regexp.MustCompile(`sha256:[0-9a-f]{12}`).ReplaceAllString(s, "sha256:xxxxxxxxxxxx")
}

func TestGCDryRunTable(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{DeleteEnabled: true})
	images := gcFill(t, reg.Host(), gcImages()...)
	env := map[string]string{
		"BINDERBUILD_IMAGE_PREFIX": reg.Host() + "/binder/r2d-",
		"BINDERBUILD_GC_MAX_AGE":   "30d",
		"BINDERBUILD_GC_PATTERNS":  "ci-2drepos",
	}
	var stdout, stderr bytes.Buffer
	if err := gcCommand(t.Context(), []string{"--keep=5", "--min-age=2d"}, gcEnv(env), &stdout, &stderr); err != nil {
		t.Fatalf("gc = %v; stderr:\n%s", err, stderr.String())
	}
	got := sanitize(stdout.String(), reg.Host())
	path := filepath.Join("testdata", "gc-dry-run.golden")
	if *gcUpdate {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestGCDryRunTable -update-gc writes it)", err)
	}
	if got != string(want) {
		t.Errorf("gc dry run table differs from %s (-update-gc rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
	for tag, im := range images {
		if !gcExists(t, reg.Host(), im) {
			t.Errorf("after a dry run, image %s is gone", tag)
		}
	}
}

func TestGCDeleteJSON(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{DeleteEnabled: true})
	images := gcFill(t, reg.Host(), gcImages()...)
	prefix := reg.Host() + "/binder/r2d-"
	env := map[string]string{
		"BINDERBUILD_IMAGE_PREFIX": prefix,
		"BINDERBUILD_GC_MAX_AGE":   "30d",
		"BINDERBUILD_GC_DELETE":    "true",
		"BINDERBUILD_GC_WORKERS":   "2",
	}

	// --delete=false overrides BINDERBUILD_GC_DELETE.
	var stdout bytes.Buffer
	if err := gcCommand(t.Context(), []string{"--delete=false", "--json"}, gcEnv(env), &stdout, &bytes.Buffer{}); err != nil {
		t.Fatalf("gc --delete=false = %v", err)
	}
	var dry gc.Report
	if err := json.Unmarshal(stdout.Bytes(), &dry); err != nil || !dry.DryRun || len(dry.Results) != 2 {
		t.Fatalf("gc --delete=false --json = %d results, dry run %v, %v; want 2, true", len(dry.Results), dry.DryRun, err)
	}

	stdout.Reset()
	if err := gcCommand(t.Context(), []string{"--json"}, gcEnv(env), &stdout, &bytes.Buffer{}); err != nil {
		t.Fatalf("gc (BINDERBUILD_GC_DELETE=true) = %v", err)
	}
	var rep struct {
		DryRun  bool `json:"dry_run"`
		Deleted int  `json:"deleted"`
		Failed  int  `json:"failed"`
		Results []struct {
			Repository string   `json:"repository"`
			Digest     string   `json:"digest"`
			Tags       []string `json:"tags"`
			Status     string   `json:"status"`
			Reasons    []struct {
				Policy string `json:"policy"`
				Detail string `json:"detail"`
			} `json:"reasons"`
		} `json:"results"`
		FreedBytes int64 `json:"freed_bytes"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode gc --json: %v\n%s", err, stdout.String())
	}
	if rep.DryRun || rep.Deleted != 2 || rep.Failed != 0 || rep.FreedBytes <= 8000 {
		t.Errorf("gc --json = dry run %v, deleted %d, failed %d, freed %d; want false, 2, 0, > 8000", rep.DryRun, rep.Deleted, rep.Failed, rep.FreedBytes)
	}
	for _, r := range rep.Results {
		if r.Status != "deleted" || len(r.Reasons) != 1 || r.Reasons[0].Policy != "max-age" {
			t.Errorf("result %s %q: status %q, reasons %+v; want deleted for max-age", r.Repository, r.Tags, r.Status, r.Reasons)
		}
	}
	for tag, im := range images {
		want := tag != "old" && tag != "older"
		if got := gcExists(t, reg.Host(), im); got != want {
			t.Errorf("after gc --delete, image %s present = %v, want %v", tag, got, want)
		}
	}

	// Purge with the exact confirmation empties the prefix, nothing else.
	var out bytes.Buffer
	args := []string{"--purge", "--confirm-purge=" + prefix, "--min-age=0", "--max-age=0"}
	if err := gcCommand(t.Context(), args, gcEnv(env), &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("gc %q = %v", args, err)
	}
	for tag, im := range images {
		want := tag == "outside"
		if got := gcExists(t, reg.Host(), im); got != want {
			t.Errorf("after purge, image %s present = %v, want %v", tag, got, want)
		}
	}
	if !strings.Contains(out.String(), "Deleted 3 of 3 images (0 failed)") {
		t.Errorf("purge output lacks the summary:\n%s", out.String())
	}
}

func TestGCPartialFailure(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{DeleteEnabled: true})
	u, err := url.Parse(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	next := httputil.NewSingleHostReverseProxy(u)
	// The registry refuses every deletion of the beta repository.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/r2d-beta-") {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"injected"}]}`, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	images := gcFill(t, host, gcImages()...)
	env := map[string]string{"BINDERBUILD_IMAGE_PREFIX": host + "/binder/r2d-"}

	var stdout bytes.Buffer
	err = gcCommand(t.Context(), []string{"--max-age=30d", "--delete"}, gcEnv(env), &stdout, &bytes.Buffer{})
	var derr *gc.DeleteError
	var ue usageError
	if !errors.As(err, &derr) || errors.As(err, &ue) || derr.Failed != 1 || derr.Attempted != 2 {
		t.Fatalf("gc --delete against a refusing registry = %v, want a *gc.DeleteError with 1 of 2 failed", err)
	}
	out := stdout.String()
	for _, want := range []string{"FAILED", "r2d-beta-bbbbbb", "DENIED: injected", "deleted ", "Deleted 1 of 2 images (1 failed)", "Run again"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if gcExists(t, host, images["old"]) || !gcExists(t, host, images["older"]) {
		t.Errorf("after a partial failure, want old deleted and older kept")
	}
}

// TestGCProtectRunning points KUBECONFIG at a small API server that lists
// one running pod using the oldest image: that image is protected, and the
// namespace comes from the kubeconfig context.
func TestGCProtectRunning(t *testing.T) {
	t.Parallel()
	reg := testregistry.Start(t, testregistry.Options{DeleteEnabled: true})
	images := gcFill(t, reg.Host(), gcImages()...)
	older := reg.Host() + "/binder/r2d-beta-bbbbbb:older"
	var paths []string
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/api/v1/namespaces/binder/pods" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[
			{"metadata":{"name":"jupyter-x","namespace":"binder"},
			 "spec":{"containers":[{"name":"notebook","image":"` + older + `"}]},
			 "status":{"phase":"Running"}}]}`))
	}))
	t.Cleanup(api.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "`+api.URL+`"}}]
contexts: [{name: test, context: {cluster: test, namespace: binder, user: test}}]
current-context: test
users: [{name: test, user: {token: not-a-secret}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"BINDERBUILD_IMAGE_PREFIX": reg.Host() + "/binder/r2d-",
		"KUBECONFIG":               kubeconfig,
	}
	var stdout, stderr bytes.Buffer
	if err := gcCommand(t.Context(), []string{"--max-age=30d", "--protect-running", "--delete", "--json"}, gcEnv(env), &stdout, &stderr); err != nil {
		t.Fatalf("gc --protect-running = %v; stderr:\n%s", err, stderr.String())
	}
	var rep gc.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Protected) != 1 || rep.Protected[0].Tags[0] != "older" || rep.Protected[0].Protections[0].Policy != gc.ProtectRunning {
		t.Errorf("protected = %+v, want the older image, protected as running", rep.Protected)
	}
	if rep.Deleted != 1 || gcExists(t, reg.Host(), images["old"]) || !gcExists(t, reg.Host(), images["older"]) {
		t.Errorf("deleted %d; want old deleted, older (running) kept", rep.Deleted)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 {
		t.Errorf("the API server was never asked for pods")
	}
}

// TestGCSettings: the BINDERBUILD_GC_* variables of the chart and of
// operators keep their names and meanings now that serve's loader reads
// them; sizes of the old syntax that quantities spell differently are
// refused with the spelling to use.
func TestGCSettings(t *testing.T) {
	t.Parallel()
	defaults := gc.Settings{Aggressive: gc.Largest, MinAge: time.Hour, Workers: 8}
	tests := []struct {
		name    string
		env     map[string]string
		want    gc.Settings
		wantErr string
	}{
		{name: "defaults", want: defaults},
		{
			name: "everything",
			env: map[string]string{
				"BINDERBUILD_IMAGE_PREFIX":            " reg.example/binder/r2d-",
				"BINDERBUILD_REGISTRY_INSECURE_HOSTS": "reg.example,10.0.0.1:5000",
				"BINDERBUILD_GC_MAX_AGE":              "30d",
				"BINDERBUILD_GC_KEEP":                 "3",
				"BINDERBUILD_GC_MAX_TOTAL_SIZE":       "500Gi",
				"BINDERBUILD_GC_AGGRESSIVE":           "OLDEST",
				"BINDERBUILD_GC_PATTERNS":             "ci-2drepos, ^x,",
				"BINDERBUILD_GC_MIN_AGE":              "2h",
				"BINDERBUILD_GC_PROTECT_RUNNING":      "true",
				"BINDERBUILD_GC_NAMESPACE":            "binder",
				"BINDERBUILD_GC_WORKERS":              "16",
				"BINDERBUILD_GC_DELETE":               "1",
				"BINDERBUILD_GC_SCHEDULE":             " @every 6h",
			},
			want: gc.Settings{
				ImagePrefix: "reg.example/binder/r2d-", InsecureHosts: []string{"reg.example", "10.0.0.1:5000"},
				MaxAge: 30 * 24 * time.Hour, Keep: 3, MaxTotalSize: 500 << 30, Aggressive: gc.Oldest,
				Patterns: []string{"ci-2drepos", "^x"}, MinAge: 2 * time.Hour, ProtectRunning: true,
				Namespace: "binder", Workers: 16, Delete: true, Schedule: "@every 6h",
			},
		},
		{name: "min age off", env: map[string]string{"BINDERBUILD_GC_MIN_AGE": "0"}, want: gc.Settings{Aggressive: gc.Largest, Workers: 8}},
		{name: "decimal size", env: map[string]string{"BINDERBUILD_GC_MAX_TOTAL_SIZE": "1.5T"}, want: with(defaults, func(s *gc.Settings) { s.MaxTotalSize = 1_500_000_000_000 })},
		{name: "old GB", env: map[string]string{"BINDERBUILD_GC_MAX_TOTAL_SIZE": "10GB"}, wantErr: `invalid BINDERBUILD_GC_MAX_TOTAL_SIZE="10GB": size "10GB": sizes are Kubernetes quantities now; write 10G`},
		{name: "old GiB", env: map[string]string{"BINDERBUILD_GC_MAX_TOTAL_SIZE": "500GiB"}, wantErr: "write 500Gi"},
		{name: "milli", env: map[string]string{"BINDERBUILD_GC_MAX_TOTAL_SIZE": "500m"}, wantErr: "thousandths"},
		{name: "octal", env: map[string]string{"BINDERBUILD_GC_KEEP": "010"}, wantErr: `invalid BINDERBUILD_GC_KEEP="010": leading zero`},
		{name: "negative keep", env: map[string]string{"BINDERBUILD_GC_KEEP": "-1"}, wantErr: `invalid BINDERBUILD_GC_KEEP=-1: must not be negative`},
		{name: "negative age", env: map[string]string{"BINDERBUILD_GC_MAX_AGE": "-1h"}, wantErr: `invalid BINDERBUILD_GC_MAX_AGE=-1h0m0s: must not be negative`},
		{name: "no unit", env: map[string]string{"BINDERBUILD_GC_MAX_AGE": "30"}, wantErr: `invalid BINDERBUILD_GC_MAX_AGE="30"`},
		{name: "order", env: map[string]string{"BINDERBUILD_GC_AGGRESSIVE": "smallest"}, wantErr: `invalid BINDERBUILD_GC_AGGRESSIVE="smallest"`},
		{name: "pattern", env: map[string]string{"BINDERBUILD_GC_PATTERNS": "("}, wantErr: `invalid BINDERBUILD_GC_PATTERNS="("`},
		{name: "delete", env: map[string]string{"BINDERBUILD_GC_DELETE": "yes please"}, wantErr: `invalid BINDERBUILD_GC_DELETE="yes please"`},
		{name: "schedule", env: map[string]string{"BINDERBUILD_GC_SCHEDULE": "sometimes"}, wantErr: `invalid BINDERBUILD_GC_SCHEDULE="sometimes"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gcSettings(mapLookup(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("gcSettings() = %+v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("gcSettings() = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func with[S any](s S, mod func(*S)) S {
	mod(&s)
	return s
}
