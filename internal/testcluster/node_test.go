//go:build linux

package testcluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/binderbuild/binderbuild/internal/goimage"
)

// loggerImage runs testdata/logger, which prints its arguments.
const loggerImage = "localhost/testcluster/logger:test"

// TestRealNode runs a pod on a real node (containerd, runc, kubelet), reads
// its log through the API server, and checks that stopping the cluster
// leaves no process, cgroup, bridge or mount of the node behind.
func TestRealNode(t *testing.T) {
	c := StartT(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	n, err := c.AddRealNode(ctx, "real-1")
	if err != nil {
		t.Fatalf("AddRealNode: %v", err)
	}
	t.Logf("real node ready in %v", time.Since(t0).Round(time.Millisecond))
	img, err := goimage.Build(ctx, goimage.Options{Package: "github.com/binderbuild/binderbuild/internal/testcluster/testdata/logger"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ImportImage(ctx, loggerImage, img); err != nil {
		t.Fatal(err)
	}

	node, err := c.Client().CoreV1().Nodes().Get(ctx, "real-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := node.Annotations[FakeNodeAnnotation]; ok {
		t.Errorf("real node has annotation %s: kwok would manage it", FakeNodeAnnotation)
	}

	ns := c.NewNamespace(ctx, t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{"kubernetes.io/hostname": "real-1"},
			Containers: []corev1.Container{{
				Name:            "main",
				Image:           loggerImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"hello", "from a real node"},
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
	if _, err := c.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err = c.Client().CoreV1().Pods(ns).Get(ctx, "hello", metav1.GetOptions{})
		return err == nil && (got.Status.Phase == corev1.PodSucceeded || got.Status.Phase == corev1.PodFailed), nil
	})
	if err != nil {
		t.Fatalf("pod never finished: %v; status %+v", err, got.Status)
	}
	if got.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("pod phase = %s, want Succeeded; status %+v", got.Status.Phase, got.Status)
	}
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("container state = %+v, want terminated, exit code 0, reason Completed", got.Status.ContainerStatuses[0].State)
	}
	_, subnet, _ := net.ParseCIDR(n.IP() + "/24")
	if ip := net.ParseIP(got.Status.PodIP); !subnet.Contains(ip) {
		t.Errorf("pod IP %q is not on the node's bridge %s", got.Status.PodIP, subnet)
	}
	log, err := c.Client().CoreV1().Pods(ns).GetLogs("hello", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("pod log: %v", err)
	}
	if want := "hello\nfrom a real node\n"; string(log) != want {
		t.Errorf("pod log = %q, want %q", log, want)
	}

	// A running pod too, so Stop has a sandbox and a container to tear down.
	pod.Name, pod.Spec.Containers[0].Image, pod.Spec.Containers[0].Args = "sleeper", PauseImage, nil
	if _, err := c.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err = c.Client().CoreV1().Pods(ns).Get(ctx, "sleeper", metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("pod never ran: %v; status %+v", err, got.Status)
	}

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	checkNodeGone(t, n)
}

// checkNodeGone fails t if anything of n is left on the machine.
func checkNodeGone(t *testing.T, n *Node) {
	t.Helper()
	if _, err := net.InterfaceByName(n.bridge); err == nil {
		t.Errorf("bridge %s still exists", n.bridge)
	}
	all, _, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if _, err := os.Stat(filepath.Join(m, n.cgroup)); err == nil {
			t.Errorf("cgroup %s still exists", filepath.Join(m, n.cgroup))
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), n.dir) {
			t.Errorf("process %s still runs: %q", filepath.Dir(p), strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	mounts, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	for _, p := range mounts {
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), n.dir) {
			t.Errorf("process %s still sees a mount under %s", filepath.Dir(p), n.dir)
		}
	}
}

// TestReapOrphans checks that the leftovers of a real node whose test
// process was killed (its record, cgroups, bridge and folder) are removed by
// the next AddRealNode's clean-up.
func TestReapOrphans(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	n := newNode(fmt.Sprintf("%08x", rand.Uint32()), "orphan", filepath.Join(t.TempDir(), "node-orphan"))
	t.Cleanup(func() { _ = errors.Join(removeCgroups(n.cgroup), n.removeBridge()) })
	if err := os.MkdirAll(filepath.Join(n.dir, "cni/conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := n.setupBridge(); err != nil {
		t.Fatal(err)
	}
	if err := n.setupCgroups(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(nodeRecords, 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(nodeRecords, n.id)
	if err := os.WriteFile(record, []byte(strconv.Itoa(dead.Process.Pid)+"\n"+n.dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reapOrphans(); err != nil {
		t.Fatalf("reapOrphans: %v", err)
	}
	checkNodeGone(t, n)
	for _, p := range []string{record, n.dir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s still exists", p)
		}
	}
}

// TestRealNodeControllers runs a DaemonSet on a real node with
// kube-controller-manager: the DaemonSet controller creates the pod, the
// service-account controllers give it API credentials, and the kubelet
// mounts them (the projected token and the kube-root-ca.crt ConfigMap).
func TestRealNodeControllers(t *testing.T) {
	c := StartWithT(t, Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if _, err := c.AddRealNode(ctx, "real-1"); err != nil {
		t.Fatalf("AddRealNode: %v", err)
	}
	ns := c.NewNamespace(ctx, t)
	labels := map[string]string{"app": "holder"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "holder"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:            "pause",
						Image:           PauseImage,
						ImagePullPolicy: corev1.PullNever,
					}},
					TerminationGracePeriodSeconds: ptr.To[int64](0),
				},
			},
		},
	}
	if _, err := c.Client().AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pods *corev1.PodList
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		pods, err = c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=holder"})
		return err == nil && len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("DaemonSet pod never ran: %v; pods %+v", err, pods)
	}
	p := pods.Items[0]
	if p.Spec.NodeName != "real-1" || p.Spec.ServiceAccountName != "default" {
		t.Errorf("pod on node %q with service account %q, want real-1 and default", p.Spec.NodeName, p.Spec.ServiceAccountName)
	}
	mounts := p.Spec.Containers[0].VolumeMounts
	if len(mounts) != 1 || mounts[0].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" {
		t.Errorf("volume mounts = %+v, want the service-account token", mounts)
	}
}
