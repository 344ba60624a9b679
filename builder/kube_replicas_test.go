package builder_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testlog"
)

// replicas starts n services on one namespace, as n replicas of one
// installation, each logging to its own buffer.
func replicas(t *testing.T, ns string, n int, cfg builder.KubeConfig) ([]*service, []*testlog.Buffer) {
	t.Helper()
	svcs := make([]*service, n)
	logs := make([]*testlog.Buffer, n)
	for i := range svcs {
		logs[i] = &testlog.Buffer{}
		c := cfg
		c.Identity = fmt.Sprintf("replica-%d", i)
		svcs[i] = startService(t, ns, c, withLogger(slog.New(slog.NewTextHandler(logs[i], nil))))
	}
	return svcs, logs
}

// podCounter follows the build pods of a namespace through one watch and
// keeps the most that were unfinished at once.
type podCounter struct {
	mu      sync.Mutex
	active  map[string]bool
	created map[string]bool
	most    int
}

func countPods(t *testing.T, ns string, onRunning func(name string)) *podCounter {
	t.Helper()
	w, err := cluster.Get(t).Client().CoreV1().Pods(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	pc := &podCounter{active: make(map[string]bool), created: make(map[string]bool)}
	running := make(map[string]bool)
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			uid := string(p.UID)
			done := ev.Type == watch.Deleted || p.DeletionTimestamp != nil ||
				p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
			pc.mu.Lock()
			pc.created[uid] = true
			if done {
				delete(pc.active, uid)
			} else {
				pc.active[uid] = true
			}
			pc.most = max(pc.most, len(pc.active))
			pc.mu.Unlock()
			if p.Status.Phase == corev1.PodRunning && !running[uid] {
				running[uid] = true
				go onRunning(p.Name)
			}
		}
	}()
	return pc
}

func (pc *podCounter) counts() (most, created int) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.most, len(pc.created)
}

// Three replicas with a build limit of 2 and 20 requests for distinct
// builds spread over them: never more than 2 build pods at once, and every
// build completes.
func TestKubeReplicasShareTheLimit(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svcs, _ := replicas(t, ns, 3, builder.KubeConfig{ConcurrentBuildLimit: 2})
	pc := countPods(t, ns, func(name string) {
		_ = cluster.Get(t).WritePodLog(t.Context(), ns, name, "builder", r2dLines[0])
		_ = cluster.Get(t).EndPodLog(t.Context(), ns, name, "builder")
		// A failure shows as a client that never completes.
		_ = cluster.Get(t).FinishPod(t.Context(), ns, name, testcluster.Succeeded())
	})
	const n = 20
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = svcs[i%3].request(t, fmt.Sprintf("limit%d/nnn%03d", i, i))
	}
	for i, c := range clients {
		got := c.wait(t)
		if len(got) < 3 || got[0] != waitingEvent || got[len(got)-2] != forwarded()[0] || got[len(got)-1] != readyEvent(fmt.Sprintf("limit%d", i), fmt.Sprintf("nnn%03d", i)) {
			t.Errorf("client %d: events\n%s\nwant waiting, queue messages, the log line, ready", i, strings.Join(got, "\n"))
		}
		for _, e := range got[1 : len(got)-2] {
			if !strings.Contains(e, "Waiting for a build slot") {
				t.Errorf("client %d: unexpected event %s", i, e)
			}
		}
	}
	most, created := pc.counts()
	if most > 2 {
		t.Errorf("%d build pods ran at once, want at most 2", most)
	}
	if created != n {
		t.Errorf("%d build pods created, want %d", created, n)
	}
}

// A request to one replica for a build another replica started attaches
// to it, even when every build slot is taken; a client whose replica dies
// mid-build reconnects to another and receives the whole log.
func TestKubeReplicasAttach(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	svcs, _ := replicas(t, ns, 3, builder.KubeConfig{ConcurrentBuildLimit: 1})
	first := svcs[0].request(t, "attach/ooo111")
	pod := waitPod(t, ns, "attach", "ooo111", corev1.PodRunning)
	writeLog(t, ns, pod.Name, r2dLines[:3]...)
	first.waitEvents(t, 4)
	joined := svcs[1].request(t, "attach/ooo111")
	joined.waitEvents(t, 4)
	svcs[0].stop() // the replica dies; its client comes back through another
	again := svcs[2].request(t, "attach/ooo111")
	again.waitEvents(t, 4)
	writeLog(t, ns, pod.Name, r2dLines[3:]...)
	finish(t, ns, pod.Name, testcluster.Succeeded())
	want := append(append([]string{waitingEvent}, forwarded()...), readyEvent("attach", "ooo111"))
	assertEvents(t, joined.wait(t), want)
	assertEvents(t, again.wait(t), want)
	// Attached replicas leave the pod to its owner, here gone, and then to
	// cleanup: one that deleted it after reading the log cut the other's
	// log short, now and then.
	if gone(t, cluster.Get(t).Client(), ns, pod.Name) {
		t.Error("a replica attached to the build pod deleted it")
	}
}

// Only the replica holding the cleanup Lease deletes orphaned pods.
func TestKubeReplicasCleanupOnOneReplica(t *testing.T) {
	ns := cluster.Get(t).NewNamespace(t.Context(), t)
	client := cluster.Get(t).Client()
	const orphans = 4
	for i := range orphans {
		orphanPod(t, ns, fmt.Sprintf("orphan-%d", i), "", true)
	}
	_, logs := replicas(t, ns, 3, builder.KubeConfig{CleanupInterval: 50 * time.Millisecond, BuildMaxAge: time.Hour})
	for i := range orphans {
		poll(t, "orphan deleted", func() bool { return gone(t, client, ns, fmt.Sprintf("orphan-%d", i)) })
	}
	lease, err := client.CoordinationV1().Leases(ns).Get(t.Context(), "binderbuild-cleanup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range logs {
		cleaned := strings.Count(l.String(), "cleanup build pod")
		leader := lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == fmt.Sprintf("replica-%d", i)
		if leader && cleaned != orphans || !leader && cleaned != 0 {
			t.Errorf("replica-%d (leader %v) deleted %d pods; the Lease holder is %v", i, leader, cleaned, lease.Spec.HolderIdentity)
		}
	}
}
