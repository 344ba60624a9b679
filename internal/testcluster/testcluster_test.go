//go:build linux

package testcluster_test

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/binderbuild/binderbuild/internal/testcluster"
)

// waitTimeout bounds every wait for the cluster to converge; generous
// because several test packages may share the two cores.
const waitTimeout = 90 * time.Second

func buildPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"component": "binderhub-build"},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:  "builder",
				Image: "example.invalid/repo2docker:latest",
			}},
		},
	}
}

// waitPod polls the pod until ok returns true.
func waitPod(t *testing.T, cs kubernetes.Interface, ns, name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var last *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = p
		return ok(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s never %s: %v; last status: %+v", ns, name, what, err, last.Status)
	}
	return last
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func running(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

func TestCluster(t *testing.T) {
	c := testcluster.StartT(t)
	ctx := t.Context()
	cs := c.Client()

	if err := c.AddNode(ctx, "kwok-node-0", map[string]string{"binderbuild.io/pool": "builders"}, nil); err != nil {
		t.Fatal(err)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, "kwok-node-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := node.Status.Allocatable.StorageEphemeral().String(), "100Gi"; got != want {
		t.Errorf("node allocatable ephemeral-storage = %s, want %s", got, want)
	}
	ns := c.NewNamespace(ctx, t)

	t.Run("kubeconfig", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
		if err != nil {
			t.Fatal(err)
		}
		kc, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kc.CoreV1().Nodes().Get(t.Context(), "kwok-node-0", metav1.GetOptions{}); err != nil {
			t.Errorf("get node through kubeconfig: %v", err)
		}
	})

	t.Run("unschedulable", func(t *testing.T) {
		tests := []struct {
			name    string
			mutate  func(*corev1.Pod)
			message string
		}{
			{
				name:    "selector",
				mutate:  func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"binderbuild.io/pool": "nowhere"} },
				message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
			},
			{
				name: "ephemeral-storage",
				mutate: func(p *corev1.Pod) {
					p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{
						corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"),
					}
				},
				message: "Insufficient ephemeral-storage",
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				pod := buildPod("unschedulable-" + tc.name)
				tc.mutate(pod)
				if _, err := cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				p := waitPod(t, cs, ns, pod.Name, "unschedulable", func(p *corev1.Pod) bool {
					cond := condition(p, corev1.PodScheduled)
					return cond != nil && cond.Status == corev1.ConditionFalse
				})
				cond := condition(p, corev1.PodScheduled)
				if cond.Reason != corev1.PodReasonUnschedulable || !strings.Contains(cond.Message, tc.message) {
					t.Errorf("PodScheduled = %s %q, want %s containing %q", cond.Reason, cond.Message, corev1.PodReasonUnschedulable, tc.message)
				}
				if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
					t.Errorf("phase, node = %s, %q; want Pending, unbound", p.Status.Phase, p.Spec.NodeName)
				}
			})
		}
	})

	t.Run("scheduled and running", func(t *testing.T) {
		pod := buildPod("runs")
		pod.Spec.NodeSelector = map[string]string{"binderbuild.io/pool": "builders"}
		if _, err := cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitPod(t, cs, ns, pod.Name, "Running", running)
		if p.Spec.NodeName != "kwok-node-0" || p.Status.PodIP == "" {
			t.Errorf("node, podIP = %q, %q; want kwok-node-0 and an IP", p.Spec.NodeName, p.Status.PodIP)
		}
		if cond := condition(p, corev1.PodScheduled); cond == nil || cond.Status != corev1.ConditionTrue {
			t.Errorf("PodScheduled = %+v, want True", cond)
		}

		// Graceful delete of a Running pod completes (kwok removes it).
		if err := cs.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Errorf("graceful delete of a Running pod did not complete: %v", err)
		}
	})

	t.Run("progressive logs", func(t *testing.T) {
		ctx := t.Context()
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, buildPod("logs"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, cs, ns, "logs", "Running", running)
		if err := c.WritePodLog(ctx, ns, "logs", "builder", "line 1", "line 2"); err != nil {
			t.Fatal(err)
		}
		stream, err := cs.CoreV1().Pods(ns).GetLogs("logs", &corev1.PodLogOptions{Container: "builder", Follow: true}).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		lines := make(chan string)
		done := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(stream)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
			done <- sc.Err()
		}()
		next := func() string {
			t.Helper()
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("log stream ended early")
				}
				return l
			case <-time.After(waitTimeout):
				t.Fatal("no log line")
			}
			return ""
		}
		var got []string
		got = append(got, next(), next())
		if err := c.WritePodLog(ctx, ns, "logs", "builder", "line 3", "line 4", "line 5"); err != nil {
			t.Fatal(err)
		}
		got = append(got, next(), next(), next())
		if err := c.FinishPod(ctx, ns, "logs", testcluster.Succeeded()); err != nil {
			t.Fatal(err)
		}
		for l := range lines {
			got = append(got, l)
		}
		if err := <-done; err != nil {
			t.Errorf("read log stream: %v", err)
		}
		want := "line 1,line 2,line 3,line 4,line 5"
		if strings.Join(got, ",") != want {
			t.Errorf("followed log = %q, want %q", strings.Join(got, ","), want)
		}

		// A non-following read of the finished pod returns the whole log.
		raw, err := cs.CoreV1().Pods(ns).GetLogs("logs", &corev1.PodLogOptions{Container: "builder"}).DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(raw), "line 1\nline 2\nline 3\nline 4\nline 5\n"; got != want {
			t.Errorf("log = %q, want %q", got, want)
		}
	})

	t.Run("EndPodLog", func(t *testing.T) {
		ctx := t.Context()
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, buildPod("endlog"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, cs, ns, "endlog", "Running", running)
		if err := c.WritePodLog(ctx, ns, "endlog", "builder", `{"phase": "building"}`); err != nil {
			t.Fatal(err)
		}
		if err := c.EndPodLog(ctx, ns, "endlog", "builder"); err != nil {
			t.Fatal(err)
		}
		stream, err := cs.CoreV1().Pods(ns).GetLogs("endlog", &corev1.PodLogOptions{Container: "builder", Follow: true}).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		data, err := io.ReadAll(stream)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(data), "{\"phase\": \"building\"}\n"; got != want {
			t.Errorf("log = %q, want %q", got, want)
		}
		if err := c.WritePodLog(ctx, ns, "endlog", "builder", "late"); err == nil {
			t.Error("WritePodLog after EndPodLog succeeded, want an error")
		}
		if err := c.WritePodLog(ctx, ns, "endlog", "nope", "x"); err == nil {
			t.Error("WritePodLog to an unknown container succeeded, want an error")
		}
	})

	t.Run("FinishPod", func(t *testing.T) {
		tests := []struct {
			name       string
			outcome    testcluster.Outcome
			phase      corev1.PodPhase
			reason     string
			exitCode   int32
			contReason string
		}{
			{"succeeded", testcluster.Succeeded(), corev1.PodSucceeded, "", 0, "Completed"},
			{"failed", testcluster.Failed(3), corev1.PodFailed, "", 3, "Error"},
			{"oomkilled", testcluster.OOMKilled(), corev1.PodFailed, "", 137, "OOMKilled"},
			{"deadline", testcluster.DeadlineExceeded(), corev1.PodFailed, "DeadlineExceeded", 137, "Error"},
			{"evicted", testcluster.Evicted(), corev1.PodFailed, "Evicted", 137, "Error"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				name := "finish-" + tc.name
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, buildPod(name), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				// No wait for Running: FinishPod applies the outcome once it runs.
				if err := c.FinishPod(ctx, ns, name, tc.outcome); err != nil {
					t.Fatal(err)
				}
				checkFinished(t, cs, ns, name, tc.phase, tc.reason, tc.exitCode, tc.contReason)
				p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				dt := condition(p, corev1.DisruptionTarget)
				if (dt != nil) != (tc.reason == "Evicted") {
					t.Errorf("DisruptionTarget condition = %+v, want one only for Evicted", dt)
				}
			})
		}
	})

	t.Run("activeDeadlineSeconds", func(t *testing.T) {
		pod := buildPod("deadline")
		pod.Spec.ActiveDeadlineSeconds = new(int64(1))
		if _, err := cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, cs, ns, pod.Name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		checkFinished(t, cs, ns, pod.Name, corev1.PodFailed, "DeadlineExceeded", 137, "Error")
	})

	t.Run("RestartAPIServer", func(t *testing.T) {
		ctx := t.Context()

		// An informer: client-go 0.37 streams its initial list (WatchListClient)
		// and relists when its resourceVersion is gone after the restart.
		factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
		seen := make(chan string, 100)
		if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { seen <- obj.(*corev1.Pod).Name },
		}); err != nil {
			t.Fatal(err)
		}
		infCtx, cancelInf := context.WithCancel(ctx)
		factory.StartWithContext(infCtx)
		defer func() { cancelInf(); factory.Shutdown() }()
		syncCtx, cancelSync := context.WithTimeout(ctx, waitTimeout)
		defer cancelSync()
		if res := factory.WaitForCacheSyncWithContext(syncCtx); res.Err != nil {
			t.Fatalf("informer did not sync: %v", res.Err)
		}

		// watchtools.UntilWithSync, synced before the restart, waiting for a pod
		// created after it to run.
		synced := make(chan struct{})
		untilDone := make(chan error, 1)
		go func() {
			lw := &cache.ListWatch{
				ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
					return cs.CoreV1().Pods(ns).List(ctx, o)
				},
				WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
					return cs.CoreV1().Pods(ns).Watch(ctx, o)
				},
			}
			ctx, cancel := context.WithTimeout(ctx, 2*waitTimeout)
			defer cancel()
			_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{},
				func(cache.Store) (bool, error) { close(synced); return false, nil },
				func(ev watch.Event) (bool, error) {
					p, ok := ev.Object.(*corev1.Pod)
					return ok && p.Name == "after-restart" && p.Status.Phase == corev1.PodRunning, nil
				})
			untilDone <- err
		}()
		select {
		case <-synced:
		case err := <-untilDone:
			t.Fatalf("UntilWithSync ended before the restart: %v", err)
		}

		// A log follower is cut by the restart with an error, not a clean EOF.
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, buildPod("follow-restart"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, cs, ns, "follow-restart", "Running", running)
		stream, err := cs.CoreV1().Pods(ns).GetLogs("follow-restart", &corev1.PodLogOptions{Container: "builder", Follow: true}).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		followErr := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, stream)
			followErr <- err
		}()

		if err := c.RestartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, buildPod("after-restart"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(waitTimeout)
	informer:
		for {
			select {
			case name := <-seen:
				if name == "after-restart" {
					break informer
				}
			case <-timeout:
				t.Fatal("informer never saw the pod created after the restart")
			}
		}
		// Scheduling and kwok also survived the restart.
		if err := <-untilDone; err != nil {
			t.Errorf("UntilWithSync across the restart: %v", err)
		}
		if err := <-followErr; err == nil {
			t.Error("log follower ended cleanly on the restart, want an error")
		}
	})
}

func checkFinished(t *testing.T, cs kubernetes.Interface, ns, name string, phase corev1.PodPhase, reason string, exitCode int32, contReason string) {
	t.Helper()
	p, err := cs.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != phase || p.Status.Reason != reason {
		t.Errorf("phase, reason = %s, %q; want %s, %q", p.Status.Phase, p.Status.Reason, phase, reason)
	}
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("containerStatuses = %+v, want one terminated", p.Status.ContainerStatuses)
	}
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term.ExitCode != exitCode || term.Reason != contReason {
		t.Errorf("terminated = %d %q, want %d %q", term.ExitCode, term.Reason, exitCode, contReason)
	}
	if cond := condition(p, corev1.PodReady); cond == nil || cond.Status != corev1.ConditionFalse {
		t.Errorf("Ready condition = %+v, want False", cond)
	}
}
