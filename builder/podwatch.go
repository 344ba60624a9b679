package builder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// maxLogLine bounds one log line; push lines with many layers pass 64 KiB.
const maxLogLine = 1 << 20

// retryDelay spaces attempts to follow a log whose stream broke.
const retryDelay = 200 * time.Millisecond

// tailLines is how many log messages a failure message repeats.
const tailLines = 10

// podWatch follows one build pod from creation to its end.
type podWatch struct {
	k    *Kube
	req  binderbuild.BuildRequest
	poke chan struct{}

	seen      bool // the informer has shown the pod
	scheduled bool // the pod was bound to a node
	phase     corev1.PodPhase
	waiting   string // last waiting reason sent

	// The log follower runs in its own goroutine; the recorder is its own
	// until its result is received from logsDone.
	logsDone  chan error         // the running follower's result; nil when none runs
	stopLogs  context.CancelFunc // stops the running follower
	logsEnded bool               // a follower ended and nothing restarted it
	retry     <-chan time.Time   // fires to follow the log again after a broken stream
	logRecorder
}

// run returns when the build ended: nil on success, an *events.Failure, or
// ctx's error when the server stops (the pod then keeps building and a later
// request attaches to it).
func (w *podWatch) run(ctx context.Context) error {
	deadline := time.NewTimer(w.k.cfg.BuildTimeout + time.Minute) // the pod's own deadline counts from its start
	defer deadline.Stop()
	defer w.stopFollower()
	for {
		pod, err := w.k.pods.Get(w.req.Name)
		switch {
		case apierrors.IsNotFound(err) && w.seen:
			return w.deleted(ctx)
		case err == nil:
			w.seen = true
			w.phase = pod.Status.Phase
			if done, err := w.observe(ctx, pod); done {
				return err
			}
		}
		select {
		case <-w.poke:
		case err := <-w.logsDone:
			w.followerEnded(err)
			if w.phase == corev1.PodRunning {
				w.retry = time.After(retryDelay)
			}
		case <-w.retry:
			w.retry = nil
		case <-deadline.C:
			w.k.deletePod(ctx, w.req.Name)
			if !w.scheduled {
				return events.Fail(events.CauseUnschedulable, "Build failed: no node could run the build pod in time. "+w.waiting)
			}
			return events.Fail(events.CauseDeadline, fmt.Sprintf("Build failed: it took longer than the build timeout of %s.\n", w.k.cfg.BuildTimeout))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// followerEnded takes the follower's result. A broken stream is not fatal:
// the pod's state decides, and the log is followed again if it still runs.
func (w *podWatch) followerEnded(err error) {
	w.logsDone, w.logsEnded = nil, true
	w.stopLogs()
	if err != nil && !errors.Is(err, context.Canceled) {
		w.k.log.Warn("follow build log", "pod", w.req.Name, "error", err)
	}
}

// stopFollower stops a running follower and waits for it.
func (w *podWatch) stopFollower() {
	if w.logsDone != nil {
		w.stopLogs()
		w.followerEnded(<-w.logsDone)
	}
}

// observe maps the pod's state to events; done reports the build's end.
func (w *podWatch) observe(ctx context.Context, pod *corev1.Pod) (done bool, err error) {
	if pod.Spec.NodeName != "" {
		w.scheduled = true
	}
	switch pod.Status.Phase {
	case corev1.PodPending:
		if msg := pendingReason(pod); msg != "" && msg != w.waiting {
			w.waiting = msg
			w.log.Append(events.Message("waiting", msg))
		}
	case corev1.PodRunning:
		w.followLogs(ctx)
	case corev1.PodSucceeded, corev1.PodFailed:
		w.followLogs(ctx)
		if !w.logsEnded {
			return false, nil // the rest of the log first
		}
		w.k.deletePod(ctx, w.req.Name)
		return true, w.result(pod)
	}
	return false, nil
}

// result is the build's outcome once its pod finished and its log was read.
func (w *podWatch) result(pod *corev1.Pod) error {
	if err := w.failed(); err != nil {
		return err
	}
	if pod.Status.Phase == corev1.PodSucceeded {
		return nil
	}
	cause, msg := failureCause(pod)
	return events.Fail(cause, msg+w.tailText())
}

// deleted ends a build whose pod disappeared: a success only if it had
// succeeded and its log was read.
func (w *podWatch) deleted(context.Context) error {
	w.stopFollower()
	if err := w.failed(); err != nil {
		return err
	}
	if w.phase == corev1.PodSucceeded && w.logsEnded {
		return nil
	}
	return events.Fail(events.CauseCancelled, "Build failed: the build pod was deleted before the build finished.\n"+w.tailText())
}

// followLogs starts the log follower once; a finished follower is started
// again only while the pod still runs (the stream broke, e.g. the API server
// restarted), and resumes after the lines already read.
func (w *podWatch) followLogs(ctx context.Context) {
	if w.logsDone != nil || w.retry != nil || (w.logsEnded && w.phase != corev1.PodRunning) {
		return
	}
	w.logsEnded = false
	ctx, w.stopLogs = context.WithCancel(ctx)
	done := make(chan error, 1)
	w.logsDone = done
	go func() { done <- w.streamLogs(ctx) }()
}

// streamLogs reads the builder container's log, skipping the records read
// by an earlier stream of the same pod.
func (w *podWatch) streamLogs(ctx context.Context) error {
	rc, err := w.k.client.CoreV1().Pods(w.k.cfg.BuildNamespace).GetLogs(w.req.Name, &corev1.PodLogOptions{
		Container: containerName, Follow: true,
	}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", w.req.Name, err)
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, maxLogLine)
	for n := 0; ; n++ {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 && n >= w.records {
			w.record(line)
			w.records++
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			// The rest of an over-long line comes as the next record.
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

func messageOf(e events.Event) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(e.Data, &m) != nil || m.Message == "" {
		return ""
	}
	if !strings.HasSuffix(m.Message, "\n") {
		m.Message += "\n"
	}
	return m.Message
}

// pendingReason says why a pending pod waits, as the scheduler or kubelet
// put it, or "" when there is nothing to say.
func pendingReason(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			return "Waiting for a node to run the build: " + c.Message + "\n"
		}
	}
	for _, c := range pod.Status.ContainerStatuses {
		if wait := c.State.Waiting; wait != nil && wait.Reason != "" && wait.Reason != "ContainerCreating" {
			msg := "Waiting for the build to start: " + wait.Reason
			if wait.Message != "" {
				msg += ": " + wait.Message
			}
			return msg + "\n"
		}
	}
	return ""
}

// failureCause says why a failed pod failed.
func failureCause(pod *corev1.Pod) (events.Cause, string) {
	switch pod.Status.Reason {
	case "DeadlineExceeded":
		return events.CauseDeadline, "Build failed: the build took longer than its deadline (DeadlineExceeded).\n"
	case "Evicted":
		return events.CauseEvicted, "Build failed: the build pod was evicted: " + pod.Status.Message + "\n"
	}
	for _, c := range pod.Status.ContainerStatuses {
		term := c.State.Terminated
		if term == nil {
			continue
		}
		return exitFailure(int(term.ExitCode), term.Reason == "OOMKilled")
	}
	msg := "Build failed: the build pod failed"
	if pod.Status.Reason != "" {
		msg += " (" + pod.Status.Reason + ")"
	}
	return events.CauseFailed, msg + ".\n"
}
