package launcher_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/launcher"
)

const quotaImage = "example.org/test/kubernetes_quota:abc"

// pod is a pod in namespace hub running images; user pods carry
// JupyterHub's labels.
func pod(name string, user bool, images ...string) runtime.Object {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "hub"}}
	if user {
		p.Labels = map[string]string{"app": "jupyterhub", "component": "singleuser-server"}
	}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c" + string(rune('0'+i)), Image: img})
	}
	return p
}

// upstream's test_quota rows: user pods running the repository's image at
// two tags (one of them twice in a pod) and another image, plus a pod that
// is no user server.
func quotaPods() []runtime.Object {
	return []runtime.Object{
		pod("a", true, "example.org/test/kubernetes_quota:1.2.3"),
		pod("b", true, "example.org/test/kubernetes_quota:latest", "example.org/test/kubernetes_quota:sidecar"),
		pod("c", true, "example.org/test/other:abc"),
		pod("build", false, "example.org/test/kubernetes_quota:1.2.3"),
	}
}

func TestQuota(t *testing.T) {
	tests := []struct {
		name  string
		cfg   launcher.QuotaConfig
		high  bool
		want  *binderbuild.QuotaExceeded
		lists int
	}{
		{name: "no quota: no list", cfg: launcher.QuotaConfig{PodQuota: -1}, lists: 0},
		{name: "pod quota reached", cfg: launcher.QuotaConfig{PodQuota: 3}, lists: 1,
			want: &binderbuild.QuotaExceeded{Status: "pod_quota", Message: "Too many users on this BinderHub! Try again soon.", Quota: 3, Used: 3}},
		{name: "pod quota 0: maintenance", cfg: launcher.QuotaConfig{PodQuota: 0}, lists: 1,
			want: &binderbuild.QuotaExceeded{Status: "pod_quota", Message: "Too many users on this BinderHub! Try again soon.", Quota: 0, Used: 3}},
		{name: "repo quota reached", cfg: launcher.QuotaConfig{PodQuota: -1, PerRepoQuota: 2}, lists: 1,
			want: &binderbuild.QuotaExceeded{Status: "repo_quota", Message: "Too many users running https://example.org/repo! Try again soon.", Quota: 2, Used: 2}},
		{name: "repo quota not reached", cfg: launcher.QuotaConfig{PodQuota: 4, PerRepoQuota: 3}, lists: 1},
		{name: "higher quota for high-quota specs", cfg: launcher.QuotaConfig{PodQuota: -1, PerRepoQuota: 2, PerRepoQuotaHigher: 3}, high: true, lists: 1},
		{name: "higher quota reached", cfg: launcher.QuotaConfig{PodQuota: -1, PerRepoQuota: 5, PerRepoQuotaHigher: 2}, high: true, lists: 1,
			want: &binderbuild.QuotaExceeded{Status: "repo_quota", Message: "Too many users running https://example.org/repo! Try again soon.", Quota: 2, Used: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(quotaPods()...)
			tc.cfg.QuotaNamespace = "hub"
			q := launcher.NewQuota(tc.cfg, cs, nil, nil)
			err := q.Check(t.Context(), quotaImage, "https://example.org/repo", tc.high)
			var got *binderbuild.QuotaExceeded
			errors.As(err, &got)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("Check = %v, want nil", err)
			case tc.want != nil && (got == nil || *got != *tc.want):
				t.Errorf("Check = %v (%+v), want %+v", err, got, tc.want)
			}
			if n := countLists(cs); n != tc.lists {
				t.Errorf("%d pod lists, want %d", n, tc.lists)
			}
		})
	}
}

// A burst of launches costs one list, and launches admitted from the
// cached count are counted in: the burst cannot overshoot the quota.
func TestQuotaBurst(t *testing.T) {
	cs := fake.NewClientset(quotaPods()...)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q := launcher.NewQuota(launcher.QuotaConfig{PodQuota: 10, PerRepoQuota: 5, QuotaNamespace: "hub", QuotaCacheTTL: time.Minute}, cs, clock, nil)
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for range 8 {
		wg.Go(func() { results <- q.Check(t.Context(), quotaImage, "https://example.org/repo", false) })
	}
	wg.Wait()
	close(results)
	admitted := 0
	for err := range results {
		if err == nil {
			admitted++
		} else if qe, ok := errors.AsType[*binderbuild.QuotaExceeded](err); !ok || qe.Status != "repo_quota" {
			t.Errorf("Check = %v, want nil or repo_quota", err)
		}
	}
	if admitted != 3 { // 2 running, quota 5
		t.Errorf("%d launches admitted, want 3", admitted)
	}
	if n := countLists(cs); n != 1 {
		t.Errorf("%d pod lists for the burst, want 1", n)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if err := q.Check(t.Context(), quotaImage, "https://example.org/repo", false); err != nil {
		t.Errorf("Check after the cache expired = %v, want nil (the pods were listed again)", err)
	}
	if n := countLists(cs); n != 2 {
		t.Errorf("%d pod lists after the cache expired, want 2", n)
	}
}

// Peek checks without counting the server in: the check before a build
// and the launch after it count one server, not two.
func TestQuotaPeek(t *testing.T) {
	cs := fake.NewClientset(quotaPods()...)
	q := launcher.NewQuota(launcher.QuotaConfig{PodQuota: -1, PerRepoQuota: 3, QuotaNamespace: "hub", QuotaCacheTTL: time.Hour}, cs, nil, nil)
	const repo = "https://example.org/repo"
	for i, step := range []struct {
		name  string
		check func() error
		want  string // status of the refusal; "" admitted
	}{
		{"Peek before the build", func() error { return q.Peek(t.Context(), quotaImage, repo, false) }, ""},
		{"Check at the launch", func() error { return q.Check(t.Context(), quotaImage, repo, false) }, ""},
		{"Peek once the quota is used", func() error { return q.Peek(t.Context(), quotaImage, repo, false) }, "repo_quota"},
	} {
		err := step.check()
		got := ""
		if qe, ok := errors.AsType[*binderbuild.QuotaExceeded](err); ok {
			got = qe.Status
		} else if err != nil {
			t.Fatalf("step %d, %s: %v", i, step.name, err)
		}
		if got != step.want {
			t.Errorf("step %d, %s: refused %q, want %q (2 servers running, quota 3)", i, step.name, got, step.want)
		}
	}
}

func countLists(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok && a.GetVerb() == "list" && a.GetResource().Resource == "pods" {
			if l.GetListRestrictions().Labels.String() != "app=jupyterhub,component=singleuser-server" {
				panic("unexpected selector " + l.GetListRestrictions().Labels.String())
			}
			n++
		}
	}
	return n
}
