package server

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
)

// fakeLauncher is a Launcher whose behaviour each test sets.
type fakeLauncher struct {
	QuotaFn  func(req binderbuild.LaunchRequest) error
	LaunchFn func(attempt int, req binderbuild.LaunchRequest, progress func(string)) (binderbuild.Launched, error)
	retries  int

	mu       sync.Mutex
	attempts int
	requests []binderbuild.LaunchRequest
	// checks and peeks count CheckQuota and PeekQuota calls.
	checks, peeks int
}

func (f *fakeLauncher) CheckQuota(_ context.Context, req binderbuild.LaunchRequest) error {
	return f.quota(&f.checks, req)
}

func (f *fakeLauncher) PeekQuota(_ context.Context, req binderbuild.LaunchRequest) error {
	return f.quota(&f.peeks, req)
}

// quota counts a call in calls and answers with QuotaFn.
func (f *fakeLauncher) quota(calls *int, req binderbuild.LaunchRequest) error {
	f.mu.Lock()
	*calls++
	f.mu.Unlock()
	if f.QuotaFn == nil {
		return nil
	}
	return f.QuotaFn(req)
}

func (f *fakeLauncher) Launch(_ context.Context, req binderbuild.LaunchRequest, progress func(string)) (binderbuild.Launched, error) {
	f.mu.Lock()
	f.attempts++
	n := f.attempts
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	return f.LaunchFn(n, req, progress)
}

func (f *fakeLauncher) Retry(attempt int) (time.Duration, bool) {
	return time.Millisecond, attempt < f.retries
}

// recorder keeps the records emitted; prepared ones (the build events of
// cache hits) go to its nil emitter, which drops them.
type recorder struct {
	*events.Emitter
	mu   sync.Mutex
	recs []events.Record
}

func (r *recorder) Emit(rec events.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
}

func (r *recorder) launches() []events.Launch {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Launch
	for _, rec := range r.recs {
		if l, ok := rec.(events.Launch); ok {
			out = append(out, l)
		}
	}
	return out
}

// readUntilEnd reads data lines until a ready or failed event, then
// leaves: a launch after a build lingers, as upstream.
func readUntilEnd(t *testing.T, url string, header ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		lines = append(lines, data)
		if strings.Contains(data, `"phase": "ready"`) || strings.Contains(data, `"phase": "failed"`) {
			return lines
		}
	}
	return lines
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const hubURL = "http://hub.test/user/org-repo-abcd1234/"

// started answers a launch with two progress messages and a server.
func started(_ int, req binderbuild.LaunchRequest, progress func(string)) (binderbuild.Launched, error) {
	progress("Server requested")
	progress("Server ready at /user/org-repo-abcd1234/")
	return binderbuild.Launched{URL: hubURL, Token: "tok-22-characters-abcd", User: "org-repo-abcd1234"}, nil
}

func launchServer(t *testing.T, l *fakeLauncher, images ImageChecker, exec builder.Executor) (string, *Metrics, *recorder) {
	t.Helper()
	m := NewMetrics(prometheus.NewPedanticRegistry(), MetricsConfig{RepoLabel: true})
	rec := &recorder{}
	deps := Deps{Launcher: l, Images: images, Metrics: m, Events: rec}
	if exec != nil {
		deps.Builder = builder.NewShared(t.Context(), exec, 0)
	}
	ts := newTestServer(t, Config{APIOnly: true}, deps)
	return ts.URL, m, rec
}

func readyLine(image, host string) string {
	return `{"phase": "ready", "message": "server running at ` + hubURL + `\n", "image": "` + image + `", "imageName": "` + image +
		`", "repo_url": "https://github.com/org/repo", "token": "tok-22-characters-abcd", "binder_ref_url": "", "binder_launch_host": "http://` + host +
		`/", "binder_request": "v2/gh/org/repo/HEAD", "binder_persistent_request": "v2/gh/", "binder_client_ip": "127.0.0.1", "url": "` + hubURL + `"}`
}

func TestLaunchTranscripts(t *testing.T) {
	image := binderbuild.ImageName("registry.example.com/binder/", "org-repo", sha)
	built := `{"phase": "built", "message": "Built image, launching...\n", "imageName": "` + image + `"}`
	found := `{"phase": "built", "imageName": "` + image + `", "message": "Found built image, launching...\n"}`
	launching := `{"phase": "launching", "message": "Launching server...\n"}`
	progress := []string{`{"phase": "launching", "message": "Server requested\n"}`,
		`{"phase": "launching", "message": "Server ready at /user/org-repo-abcd1234/\n"}`}

	t.Run("cache hit then launch", func(t *testing.T) {
		l := &fakeLauncher{LaunchFn: started, retries: 4}
		url, m, rec := launchServer(t, l, present(image), nil)
		host := strings.TrimPrefix(url, "http://")
		got := readUntilEnd(t, url+"/build/gh/org/repo/HEAD", "Sec-Fetch-Site", "same-origin")
		assertLines(t, got, append(append([]string{found, launching}, progress...), readyLine(image, host)))
		if want := (binderbuild.LaunchRequest{Image: image, RepoURL: "https://github.com/org/repo", LaunchHost: "http://" + host + "/",
			Request: "v2/gh/org/repo/HEAD", PersistentRequest: "v2/gh/", ClientIP: "127.0.0.1"}); len(l.requests) != 1 || l.requests[0] != want {
			t.Errorf("launch requests = %+v, want one %+v", l.requests, want)
		}
		assertLaunchMetrics(t, m, map[string]float64{"success/0": 1}, map[string]float64{"success": 1})
		waitLaunches(t, rec, []events.Launch{{Provider: "GitHub", Spec: "org/repo/HEAD", Ref: sha, Status: "success", Origin: host, RequestOrigin: "same-origin"}})
	})

	t.Run("build then launch", func(t *testing.T) {
		l := &fakeLauncher{LaunchFn: started, retries: 4}
		step := events.Message("building", "Step 1/1\n")
		url, m, rec := launchServer(t, l, present(), &scriptExec{events: []events.Event{step}})
		host := strings.TrimPrefix(url, "http://")
		got := readUntilEnd(t, url+"/build/gh/org/repo/HEAD", "Origin", "https://elsewhere.test")
		assertLines(t, got, append(append([]string{string(events.Waiting.Data), string(step.Data), built, launching}, progress...), readyLine(image, host)))
		assertLaunchMetrics(t, m, map[string]float64{"success/0": 1}, map[string]float64{"success": 1})
		// The check before the build counts no server: the launch's does.
		if l.peeks != 1 || l.checks != 1 {
			t.Errorf("%d quota peeks and %d checks, want 1 peek before the build and 1 check at the launch", l.peeks, l.checks)
		}
		waitLaunches(t, rec, []events.Launch{{Provider: "GitHub", Spec: "org/repo/HEAD", Ref: sha, Status: "success", Origin: host, RequestOrigin: "https://elsewhere.test"}})
	})

	t.Run("retried, then failed", func(t *testing.T) {
		l := &fakeLauncher{retries: 2, LaunchFn: func(int, binderbuild.LaunchRequest, func(string)) (binderbuild.Launched, error) {
			return binderbuild.Launched{}, &binderbuild.LaunchError{Code: 500, Message: "Failed to launch image " + image}
		}}
		url, m, rec := launchServer(t, l, present(image), nil)
		got := readUntilEnd(t, url+"/build/gh/org/repo/HEAD")
		assertLines(t, got, []string{found, launching, `{"phase": "launching", "message": "Launch attempt 1 failed, retrying...\n"}`,
			`{"phase": "failed", "status_code": 500, "message": "Failed to launch image ` + image + `\n"}`})
		assertLaunchMetrics(t, m, map[string]float64{"retry/-1": 1, "failure/-1": 1}, map[string]float64{"failure": 1})
		waitLaunches(t, rec, nil)
	})

	t.Run("quota exceeded before the build", func(t *testing.T) {
		l := &fakeLauncher{LaunchFn: started, QuotaFn: func(req binderbuild.LaunchRequest) error {
			return &binderbuild.QuotaExceeded{Status: "repo_quota", Message: "Too many users running " + req.RepoURL + "! Try again soon."}
		}}
		url, m, rec := launchServer(t, l, present(), &scriptExec{})
		got := readUntilEnd(t, url+"/build/gh/org/repo/HEAD")
		assertLines(t, got, []string{`{"phase": "failed", "message": "Too many users running https://github.com/org/repo! Try again soon.\n"}`})
		assertLaunchMetrics(t, m, nil, map[string]float64{"repo_quota": 1})
		waitLaunches(t, rec, nil)
	})

	t.Run("quota exceeded at a cache hit", func(t *testing.T) {
		l := &fakeLauncher{LaunchFn: started, QuotaFn: func(binderbuild.LaunchRequest) error {
			return &binderbuild.QuotaExceeded{Status: "pod_quota", Message: "Too many users on this BinderHub! Try again soon."}
		}}
		url, m, _ := launchServer(t, l, present(image), nil)
		got := readUntilEnd(t, url+"/build/gh/org/repo/HEAD")
		assertLines(t, got, []string{found, `{"phase": "failed", "message": "Too many users on this BinderHub! Try again soon.\n"}`})
		assertLaunchMetrics(t, m, nil, map[string]float64{"pod_quota": 1})
		if l.attempts != 0 {
			t.Errorf("%d launch attempts past the quota, want 0", l.attempts)
		}
	})

	t.Run("build only: no launch", func(t *testing.T) {
		l := &fakeLauncher{LaunchFn: started, retries: 4}
		url, m, _ := launchServer(t, l, present(image), nil)
		got := readUntilEnd(t, url+"/build/gh/org/repo/HEAD?build_only=true")
		assertLines(t, got, []string{`{"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}`})
		assertLaunchMetrics(t, m, nil, nil)
		if l.attempts != 0 {
			t.Errorf("%d launch attempts for build_only=true, want 0", l.attempts)
		}
	})
}

// assertLaunchMetrics compares the launch series that moved: times by
// "status/retries", counts by status (provider GitHub, repo the URL).
func assertLaunchMetrics(t *testing.T, m *Metrics, times, counts map[string]float64) {
	t.Helper()
	for _, key := range []string{"success/0", "retry/-1", "failure/-1"} {
		status, retries, _ := strings.Cut(key, "/")
		h := m.launchTime.WithLabelValues(status, retries).(prometheus.Histogram)
		if got := testutil.CollectAndCount(h); got != 1 {
			t.Fatalf("collect %s: %d series", key, got)
		}
		if got, want := histogramCount(t, h), times[key]; got != want {
			t.Errorf("binderhub_launch_time_seconds{%s} count = %v, want %v", key, got, want)
		}
	}
	for _, status := range []string{"success", "failure", "pod_quota", "repo_quota"} {
		if got, want := testutil.ToFloat64(m.launchCount.WithLabelValues(status, "GitHub", "https://github.com/org/repo")), counts[status]; got != want {
			t.Errorf("binderhub_launch_count_total{status=%q} = %v, want %v", status, got, want)
		}
	}
	if got := testutil.ToFloat64(m.inProgressLaunches); got != 0 {
		t.Errorf("binderhub_inprogress_launches = %v after the launch, want 0", got)
	}
}

func histogramCount(t *testing.T, h prometheus.Histogram) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return float64(pb.GetHistogram().GetSampleCount())
}

// waitLaunches waits briefly for the launch events (they are emitted as the
// handler returns) and compares them.
func waitLaunches(t *testing.T, rec *recorder, want []events.Launch) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.launches()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a second, wrong event would arrive by now
	got := rec.launches()
	if len(got) != len(want) {
		t.Fatalf("launch events = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("launch event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
