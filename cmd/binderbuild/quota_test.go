package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testhub"
)

// userPodLists counts the requests that list JupyterHub's user pods (the
// launch quota's count), passing every request on to next.
type userPodLists struct {
	next  http.Handler
	calls atomic.Int64
}

func (u *userPodLists) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/pods") && q.Get("watch") == "" &&
		q.Get("labelSelector") == "app=jupyterhub,component=singleuser-server" {
		u.calls.Add(1)
	}
	u.next.ServeHTTP(w, r)
}

// TestServeLaunchQuotas launches through the real wiring and a real
// JupyterHub whose spawner keeps a pod per server in a real kube-apiserver,
// as KubeSpawner does; the quotas count those pods as upstream's
// KubernetesLaunchQuota does.
func TestServeLaunchQuotas(t *testing.T) {
	f := newFixture(t)
	cluster := testcluster.StartT(t)
	ns := cluster.NewNamespace(t.Context(), t)
	lists := &userPodLists{next: apiServerProxy(t, cluster)}
	api := httptest.NewServer(lists)
	t.Cleanup(api.Close)
	hub := testhub.Start(t, testhub.Options{UserPods: &testhub.UserPods{APIURL: api.URL, Namespace: ns}})
	env := f.env.with(map[string]string{
		"KUBECONFIG":                        writeProxyKubeconfig(t, api.URL),
		"BINDERBUILD_EXECUTOR":              "kubernetes",
		"BINDERBUILD_BUILD_NAMESPACE":       ns,
		"BINDERBUILD_PER_REPO_QUOTA":        "1",
		"BINDERBUILD_PER_REPO_QUOTA_HIGHER": "2",
	})
	launchEnv(env, hub.URL, hub.APIURL, hub.Token)
	f.push(t, binderbuild.ImageName(f.prefix, "org-other", headSHA))
	image := func(repo string) string { return binderbuild.ImageName(f.prefix, "org-"+repo, headSHA) }
	refused := func(repo, message string) []string {
		return []string{
			`{"phase": "built", "imageName": "` + image(repo) + `", "message": "Found built image, launching...\n"}`,
			`{"phase": "failed", "message": "` + message + `\n"}`,
		}
	}
	repoQuota := func(repo string) []string {
		return refused(repo, "Too many users running https://github.com/org/"+repo+"! Try again soon.")
	}
	base := serveT(t, env)
	host := strings.TrimPrefix(base, "http://")

	t.Run("per-repo quota exceeded", func(t *testing.T) {
		assertTranscript(t, sseData(stream(t, base+"/build/gh/org/repo/HEAD", "text/event-stream")), launchTranscript(image("repo"), "repo", hub.URL, host))
		assertUserPods(t, cluster, ns, map[string]int{image("repo"): 1})
		assertTranscript(t, sseData(stream(t, base+"/build/gh/org/repo/HEAD", "text/event-stream")), repoQuota("repo"))
	})

	t.Run("higher per-repo quota of a high-quota spec exceeded", func(t *testing.T) {
		base := serveT(t, env.with(map[string]string{"BINDERBUILD_HIGH_QUOTA_SPECS": "^org/repo/.*"}))
		host := strings.TrimPrefix(base, "http://")
		assertTranscript(t, sseData(stream(t, base+"/build/gh/org/repo/HEAD", "text/event-stream")), launchTranscript(image("repo"), "repo", hub.URL, host))
		assertUserPods(t, cluster, ns, map[string]int{image("repo"): 2})
		assertTranscript(t, sseData(stream(t, base+"/build/gh/org/repo/HEAD", "text/event-stream")), repoQuota("repo"))
	})

	t.Run("pod quota exceeded by a burst, counted with one list", func(t *testing.T) {
		base := serveT(t, env.with(map[string]string{
			"BINDERBUILD_PER_REPO_QUOTA":  "0",
			"BINDERBUILD_POD_QUOTA":       "2",
			"BINDERBUILD_QUOTA_CACHE_TTL": "1h",
		}))
		before := lists.calls.Load()
		const burst = 6
		got := make([][]string, burst)
		errs := make([]error, burst)
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() { got[i], errs[i] = eventData(base + "/build/gh/org/other/HEAD") })
		}
		wg.Wait()
		for i := range burst {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			assertTranscript(t, got[i], refused("other", "Too many users on this BinderHub! Try again soon."))
		}
		if n := lists.calls.Load() - before; n != 1 {
			t.Errorf("%d lists of the user pods for a burst of %d launches, want 1", n, burst)
		}
	})
}

// eventData returns the data lines of the event stream at url; unlike
// stream, it may run on any goroutine.
func eventData(url string) ([]string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out, sc.Err()
}

// assertUserPods checks the pods the quota counts in ns: how many run each
// image, and that they carry KubeSpawner's labels and annotations.
func assertUserPods(t *testing.T, cluster *testcluster.Cluster, ns string, want map[string]int) {
	t.Helper()
	pods, err := cluster.Client().CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=jupyterhub,component=singleuser-server"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, p := range pods.Items {
		got[p.Spec.Containers[0].Image]++
		if user := p.Annotations["hub.jupyter.org/username"]; user == "" || p.Labels["hub.jupyter.org/username"] != user || p.Name != "jupyter-"+user {
			t.Errorf("pod %s: labels %v, annotations %v, want KubeSpawner's for its user", p.Name, p.Labels, p.Annotations)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("user pods by image = %v, want %v (%s)", got, want, podNames(pods.Items))
	}
}

func podNames(pods []corev1.Pod) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
