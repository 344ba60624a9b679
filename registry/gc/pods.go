package gc

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podPageSize is the page size of pod lists.
const podPageSize = 500

// KubernetesPods is the PodImages of a Kubernetes namespace: the images of
// every pod that is pending or running there (succeeded and failed pods
// are ignored). Create it with NewKubernetesPods.
type KubernetesPods struct {
	// client lists pods; namespace is where ("" = all namespaces).
	client    kubernetes.Interface
	namespace string
}

var _ PodImages = (*KubernetesPods)(nil)

// NewKubernetesPods returns the PodImages of namespace ("" = every
// namespace, which needs cluster-wide list permission on pods).
func NewKubernetesPods(client kubernetes.Interface, namespace string) *KubernetesPods {
	return &KubernetesPods{client: client, namespace: namespace}
}

// RunningImages lists the pods (in pages) and returns the image of every
// container, init container and ephemeral container of pending and running
// pods, plus the image IDs the kubelet resolved them to (with any
// "docker-pullable://" style scheme removed), so an image is protected
// whether a pod names it by tag or by digest.
func (k *KubernetesPods) RunningImages(ctx context.Context) (map[string]bool, error) {
	images := make(map[string]bool)
	opts := metav1.ListOptions{Limit: podPageSize}
	for {
		pods, err := k.client.CoreV1().Pods(k.namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods in namespace %q: %w", k.namespace, err)
		}
		for _, pod := range pods.Items {
			if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				continue
			}
			for _, c := range pod.Spec.InitContainers {
				add(images, c.Image)
			}
			for _, c := range pod.Spec.Containers {
				add(images, c.Image)
			}
			for _, c := range pod.Spec.EphemeralContainers {
				add(images, c.Image)
			}
			for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
				for _, s := range statuses {
					add(images, s.Image)
					add(images, s.ImageID)
				}
			}
		}
		if pods.Continue == "" {
			return images, nil
		}
		opts.Continue = pods.Continue
	}
}

// add records ref without a "scheme://" prefix, when not empty.
func add(images map[string]bool, ref string) {
	if _, rest, ok := strings.Cut(ref, "://"); ok {
		ref = rest
	}
	if ref != "" {
		images[ref] = true
	}
}
