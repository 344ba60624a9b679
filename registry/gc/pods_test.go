package gc

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestKubernetesPods(t *testing.T) {
	t.Parallel()
	pod := func(ns, name string, phase corev1.PodPhase, images ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Status: corev1.PodStatus{Phase: phase}}
		for _, img := range images {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "c", Image: img})
		}
		return p
	}
	running := pod("binder", "jupyter-a", corev1.PodRunning, "reg.example/binder/r2d-a:1111")
	running.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "reg.example/binder/init:1"}}
	running.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name:    "c",
		Image:   "reg.example/binder/r2d-a:1111",
		ImageID: "docker-pullable://reg.example/binder/r2d-a@sha256:aaaa",
	}}
	pending := pod("binder", "jupyter-b", corev1.PodPending, "reg.example/binder/r2d-b:2222")
	pending.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
	cs := fake.NewClientset(
		running,
		pending,
		pod("binder", "done", corev1.PodSucceeded, "reg.example/binder/r2d-done:3333"),
		pod("binder", "crashed", corev1.PodFailed, "reg.example/binder/r2d-failed:4444"),
		pod("other", "elsewhere", corev1.PodRunning, "reg.example/binder/r2d-other:5555"),
	)
	tests := []struct {
		namespace string
		want      []string
	}{
		{"binder", []string{
			"busybox",
			"reg.example/binder/init:1",
			"reg.example/binder/r2d-a:1111",
			"reg.example/binder/r2d-a@sha256:aaaa",
			"reg.example/binder/r2d-b:2222",
		}},
		{"", []string{
			"busybox",
			"reg.example/binder/init:1",
			"reg.example/binder/r2d-a:1111",
			"reg.example/binder/r2d-a@sha256:aaaa",
			"reg.example/binder/r2d-b:2222",
			"reg.example/binder/r2d-other:5555",
		}},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run("namespace "+tc.namespace, func(t *testing.T) {
			got, err := NewKubernetesPods(cs, tc.namespace).RunningImages(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			keys := slices.Sorted(maps.Keys(got))
			if !slices.Equal(keys, tc.want) {
				t.Errorf("RunningImages() = %q, want %q", keys, tc.want)
			}
		})
	}
}
