//go:build linux

package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// AnnotationPrefix prefixes the pod annotations FinishPod sets; kwok's
// pod-finish stage turns them into the pod's final status.
const AnnotationPrefix = "testcluster.binderbuild.io/"

// Outcome is how FinishPod ends a pod: the pod's final phase, reason and
// message, and the terminated state given to every container. Use the
// constructors (Succeeded, Failed, OOMKilled, DeadlineExceeded, Evicted) and
// adjust fields when a test needs other strings.
type Outcome struct {
	// Phase is corev1.PodSucceeded or corev1.PodFailed.
	Phase corev1.PodPhase
	// Reason and Message become status.reason and status.message (empty for
	// a plain exit). Reason "Evicted" also adds a DisruptionTarget condition.
	Reason, Message string
	// ExitCode, ContainerReason and ContainerMessage become each container's
	// state.terminated fields.
	ExitCode         int32
	ContainerReason  string
	ContainerMessage string
}

// Succeeded is a clean exit: phase Succeeded, exit code 0, reason Completed.
func Succeeded() Outcome {
	return Outcome{Phase: corev1.PodSucceeded, ContainerReason: "Completed"}
}

// Failed is a non-zero exit: phase Failed, the given exit code, reason Error.
func Failed(exitCode int32) Outcome {
	return Outcome{Phase: corev1.PodFailed, ExitCode: exitCode, ContainerReason: "Error"}
}

// OOMKilled is the kernel's OOM kill: phase Failed, exit code 137, container
// reason OOMKilled.
func OOMKilled() Outcome {
	return Outcome{Phase: corev1.PodFailed, ExitCode: 137, ContainerReason: "OOMKilled"}
}

// DeadlineExceeded is the kubelet enforcing activeDeadlineSeconds: phase
// Failed, reason DeadlineExceeded, containers killed (137, Error). kwok applies
// the same outcome by itself to Running pods with spec.activeDeadlineSeconds
// once status.startTime + activeDeadlineSeconds has passed.
func DeadlineExceeded() Outcome {
	return Outcome{
		Phase:           corev1.PodFailed,
		Reason:          "DeadlineExceeded",
		Message:         "Pod was active on the node longer than the specified deadline",
		ExitCode:        137,
		ContainerReason: "Error",
	}
}

// Evicted is a kubelet eviction under ephemeral-storage pressure: phase
// Failed, reason Evicted, a DisruptionTarget condition, containers killed
// (137, Error).
func Evicted() Outcome {
	return Outcome{
		Phase:           corev1.PodFailed,
		Reason:          "Evicted",
		Message:         "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 1Gi. ",
		ExitCode:        137,
		ContainerReason: "Error",
	}
}

// FinishPod ends the pod with outcome and waits until its status shows it
// (phase and every container terminated). It annotates the pod and lets kwok
// write the status, so it works on a pod kwok has not yet made Running: the
// outcome is applied once it runs (a pod that is never scheduled never ends;
// bound ctx). Followers of the pod's logs then reach the end of the stream.
// A pod that already finished keeps its status; a pod deleted meanwhile
// counts as finished.
func (c *Cluster) FinishPod(ctx context.Context, ns, pod string, outcome Outcome) error {
	if outcome.Phase != corev1.PodSucceeded && outcome.Phase != corev1.PodFailed {
		return fmt.Errorf("finish pod %s/%s: phase %q is not terminal", ns, pod, outcome.Phase)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		AnnotationPrefix + "phase":             string(outcome.Phase),
		AnnotationPrefix + "reason":            outcome.Reason,
		AnnotationPrefix + "message":           outcome.Message,
		AnnotationPrefix + "exit-code":         strconv.Itoa(int(outcome.ExitCode)),
		AnnotationPrefix + "container-reason":  outcome.ContainerReason,
		AnnotationPrefix + "container-message": outcome.ContainerMessage,
	}}})
	if err != nil {
		return err
	}
	p, err := c.client.CoreV1().Pods(ns).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("annotate pod %s/%s: %w", ns, pod, err)
	}
	uid := p.UID
	err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := c.client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil // finished and already deleted by its owner
		}
		if err != nil {
			return false, nil // e.g. during RestartAPIServer
		}
		if p.UID != uid {
			return false, fmt.Errorf("pod was replaced")
		}
		return finished(p, outcome.Phase), nil
	})
	if err != nil {
		return fmt.Errorf("wait for pod %s/%s to be %s: %w", ns, pod, outcome.Phase, err)
	}
	return nil
}

func finished(p *corev1.Pod, phase corev1.PodPhase) bool {
	if p.Status.Phase != phase || len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Terminated == nil {
			return false
		}
	}
	return true
}
