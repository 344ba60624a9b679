package builder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// maxLogLine bounds one log line; push lines with many layers pass 64 KiB.
const maxLogLine = 1 << 20

// tailLines is how many log messages a failure message repeats.
const tailLines = 10

// logBackoff spaces attempts to follow a log whose stream broke: 200 ms,
// doubling up to 30 s, reset once a stream delivers lines again.
func logBackoff() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: 30 * time.Second}
}

// maxFinishedAttempts is how many streams of a finished pod's log may break
// in a row before the build ends without the rest of its log.
const maxFinishedAttempts = 8

// podWatch follows one build pod from creation to its end.
type podWatch struct {
	k   *Kube
	req binderbuild.BuildRequest
	// owner: this replica created the pod and deletes it once it read the
	// whole log. Replicas attached to it read on, each to the end, and
	// leave it to the owner, or, when the owner is gone, to cleanup.
	owner bool
	poke  chan struct{}

	uid       types.UID // the pod followed; another UID under the name is another build
	scheduled bool      // the pod was bound to a node
	phase     corev1.PodPhase
	waiting   string // last waiting reason sent
	deadline  <-chan time.Time
	// mountCheck fires to look for FailedMount events of a scheduled pod
	// still pending; nil when no check is due.
	mountCheck <-chan time.Time

	// The log follower runs in its own goroutine; the recorder and resume
	// point are its own until its result is received from logsDone.
	logsDone     chan error         // the running follower's result; nil when none runs
	stopLogs     context.CancelFunc // stops the running follower
	logsComplete bool               // a stream reached the end of a terminated container's log
	broken       int                // streams in a row that ended without completing the log
	backoff      wait.Backoff
	retry        <-chan time.Time // fires to follow the log again after a broken stream
	resume
	logRecorder
}

// run returns when the build ended: nil on success, an *events.Failure, or
// ctx's error when the server stops (the pod then keeps building and a later
// request attaches to it).
func (w *podWatch) run(ctx context.Context) error {
	w.backoff = logBackoff()
	defer w.stopFollower()
	// A pod claimed by another replica that never appears: that replica
	// died before creating it.
	absent := time.NewTimer(claimGrace)
	defer absent.Stop()
	for {
		pod, err := w.k.pods.Get(w.req.Name)
		switch {
		case (apierrors.IsNotFound(err) || err == nil && pod.UID != w.uid) && w.uid != "":
			return w.deleted(ctx)
		case err == nil:
			w.seen(pod)
			if done, err := w.observe(ctx, pod); done {
				return err
			}
		}
		select {
		case <-w.poke:
		case err := <-w.logsDone:
			w.followerEnded(ctx, err)
		case <-w.retry:
			w.retry = nil
		case <-w.deadline:
			return w.timedOut(ctx)
		case <-w.mountCheck:
			w.mountCheck = nil
			if err := w.mountFailure(ctx); err != nil {
				w.k.deletePod(ctx, w.req.Name)
				return err
			}
		case <-absent.C:
			if w.uid == "" {
				return events.Fail(events.CauseFailed, "Build failed: the build pod was never created. Please try again.\n")
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// seen takes the pod's identity and phase; the build timeout counts from
// the pod's creation, whichever replica watches it and since when.
func (w *podWatch) seen(pod *corev1.Pod) {
	w.phase = pod.Status.Phase
	if w.uid != "" {
		return
	}
	w.uid = pod.UID
	if timeout := w.k.cfg.BuildTimeout; timeout > 0 {
		t := time.NewTimer(time.Until(pod.CreationTimestamp.Add(timeout)))
		w.deadline = t.C // garbage once the watch ends; Go 1.23 timers need no Stop
	}
}

// timedOut deletes a pod past the build timeout.
func (w *podWatch) timedOut(ctx context.Context) error {
	w.k.deletePod(ctx, w.req.Name)
	if !w.scheduled {
		return events.Fail(events.CauseUnschedulable, "Build failed: no node could run the build pod in time. "+w.waiting)
	}
	return events.Fail(events.CauseDeadline, timeoutMessage(w.k.cfg.BuildTimeout)+w.tailText())
}

// followerEnded takes the follower's result. A stream that ended before the
// container terminated, or broke, is followed again after a backoff; only
// the first break of a series is worth a warning.
func (w *podWatch) followerEnded(ctx context.Context, err error) {
	w.logsDone = nil
	w.stopLogs()
	if err == nil && w.terminated() {
		w.logsComplete = true
		return
	}
	if errors.Is(err, errNoLog) && w.finished() {
		w.logsComplete = true // the container never ran: no log to read
		return
	}
	if w.progressed {
		w.broken, w.backoff = 0, logBackoff()
	}
	w.broken++
	if err != nil {
		level := slog.LevelDebug
		if w.broken == 1 {
			level = slog.LevelWarn
		}
		w.k.log.Log(ctx, level, "follow build log: following again after a backoff", "pod", w.req.Name, "attempt", w.broken, "error", err)
	}
	if w.finished() && w.broken >= maxFinishedAttempts {
		w.k.log.WarnContext(ctx, "build log unreadable: ending the build without its end", "pod", w.req.Name, "error", err)
		w.logsComplete = true
		return
	}
	w.retry = time.After(w.backoff.Step())
}

// terminated reports whether the builder container had terminated when the
// stream ended: the end of its log is then the end of the stream.
func (w *podWatch) terminated() bool {
	pod, err := w.k.pods.Get(w.req.Name)
	if err != nil || pod.UID != w.uid {
		return false
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == containerName {
			return c.State.Terminated != nil
		}
	}
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func (w *podWatch) finished() bool {
	return w.phase == corev1.PodSucceeded || w.phase == corev1.PodFailed
}

// stopFollower stops a running follower and waits for it.
func (w *podWatch) stopFollower() {
	if w.logsDone != nil {
		w.stopLogs()
		<-w.logsDone
		w.logsDone = nil
	}
}

// observe maps the pod's state to events; done reports the build's end.
func (w *podWatch) observe(ctx context.Context, pod *corev1.Pod) (done bool, err error) {
	if pod.Spec.NodeName != "" {
		w.scheduled = true
	}
	switch pod.Status.Phase {
	case corev1.PodPending:
		if err := pendingFailure(pod); err != nil {
			w.k.deletePod(ctx, w.req.Name)
			return true, err
		}
		if w.scheduled && w.mountCheck == nil {
			w.mountCheck = time.After(mountCheckInterval)
		}
		if msg := pendingReason(pod); msg != "" && msg != w.waiting {
			w.waiting = msg
			w.log.Append(events.Message("waiting", msg))
		}
	case corev1.PodRunning:
		w.followLogs(ctx)
	case corev1.PodSucceeded, corev1.PodFailed:
		w.followLogs(ctx)
		if !w.logsComplete {
			return false, nil // the rest of the log first
		}
		if w.owner {
			w.k.deletePod(ctx, w.req.Name)
		}
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

// deleted ends a build whose pod disappeared, or was replaced by another
// under the same name: a success only if it had succeeded and its log was
// read.
func (w *podWatch) deleted(context.Context) error {
	w.stopFollower()
	if err := w.failed(); err != nil {
		return err
	}
	if w.phase == corev1.PodSucceeded && w.logsComplete {
		return nil
	}
	return events.Fail(events.CauseCancelled, "Build failed: the build pod was deleted before the build finished.\n"+w.tailText())
}

// followLogs starts the log follower unless one runs, waits to start again,
// or read the whole log.
func (w *podWatch) followLogs(ctx context.Context) {
	if w.logsDone != nil || w.retry != nil || w.logsComplete {
		return
	}
	ctx, w.stopLogs = context.WithCancel(ctx)
	done := make(chan error, 1)
	w.logsDone = done
	w.restart()
	go func() { done <- w.streamLogs(ctx) }()
}

// errNoLog is a log request the API server refused (e.g. a container that
// never started): retrying a finished pod's log would not help.
var errNoLog = errors.New("no log")

// streamLogs reads the builder container's log with timestamps, from the
// second of the last line read on, and forwards the lines not read before.
// Resuming by time instead of by count is right after the kubelet rotated
// the log (the stream then starts later) and never reads another pod's log
// as this one's.
func (w *podWatch) streamLogs(ctx context.Context) error {
	opts := &corev1.PodLogOptions{Container: containerName, Follow: true, Timestamps: true}
	if !w.last.IsZero() {
		opts.SinceTime = &metav1.Time{Time: w.last}
	}
	rc, err := w.k.client.CoreV1().Pods(w.k.cfg.BuildNamespace).GetLogs(w.req.Name, opts).Stream(ctx)
	if apierrors.IsBadRequest(err) || apierrors.IsNotFound(err) {
		return fmt.Errorf("open log of %s: %w: %w", w.req.Name, errNoLog, err)
	}
	if err != nil {
		return fmt.Errorf("open log of %s: %w", w.req.Name, err)
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, maxLogLine)
	more := false // the next record continues an over-long line
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if rest, ok := w.fresh(line, more); ok {
				w.record(rest)
				w.progressed = true
			}
		}
		more = errors.Is(err, bufio.ErrBufferFull)
		switch {
		case more:
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

// pendingFailure is the failure of a pending pod whose container the
// kubelet cannot start as specified: its image cannot be pulled (the kubelet
// would retry for as long as the build may take), or its configuration
// (e.g. a variable from a missing Secret, as an admission webhook may add)
// is wrong. nil when there is none.
func pendingFailure(pod *corev1.Pod) error {
	for _, c := range pod.Status.ContainerStatuses {
		wait := c.State.Waiting
		if wait == nil {
			continue
		}
		switch wait.Reason {
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
			return events.Fail(events.CauseFailed, "Build failed: the build image could not be pulled ("+wait.Reason+"): "+wait.Message+"\n")
		case "CreateContainerConfigError":
			return events.Fail(events.CauseFailed, "Build failed: the build container could not be created ("+wait.Reason+"): "+wait.Message+"\n")
		}
	}
	return nil
}

// mountCheckInterval spaces the looks for FailedMount events of a build pod
// waiting on its node.
const mountCheckInterval = 2 * time.Second

// mountGrace is how long the kubelet's attempts to mount a build pod's
// volumes may fail before the build fails: a docker-api that is still
// starting on its node creates the socket moments later, and the kubelet's
// next attempt (after a growing backoff: 0.5, 1, 2, 4, 8, 16 s) mounts it.
const mountGrace = 30 * time.Second

// mountFailure is the failure of a pod whose volumes the kubelet has failed
// to mount for mountGrace (e.g. no docker-api socket on the node, or a
// missing push Secret): the pod would wait for them for as long as the build
// may take, and only the pod's events say so. nil when there is none, or
// the events cannot be read (the chart's Role allows it).
func (w *podWatch) mountFailure(ctx context.Context) error {
	list, err := w.k.client.CoreV1().Events(w.k.cfg.BuildNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.uid=" + string(w.uid) + ",reason=FailedMount",
	})
	if err != nil {
		w.k.log.DebugContext(ctx, "read build pod events", "pod", w.req.Name, "error", err)
		return nil
	}
	for _, e := range list.Items {
		if e.LastTimestamp.Sub(e.FirstTimestamp.Time) >= mountGrace {
			return events.Fail(events.CauseFailed, "Build failed: the build pod could not mount its volumes: "+e.Message+"\n")
		}
	}
	return nil
}

// failureCause says why a failed pod failed.
func failureCause(pod *corev1.Pod) (events.Cause, string) {
	switch pod.Status.Reason {
	case "DeadlineExceeded":
		// The kubelet and the server's timer race at the timeout: both say
		// the same.
		if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
			return events.CauseDeadline, timeoutMessage(time.Duration(*d) * time.Second)
		}
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

// resume is how far a pod's log was read: the kubelet's timestamp of the
// last line and how many lines carried exactly that timestamp. A stream
// opened again from that second skips what was read and nothing else.
type resume struct {
	last     time.Time
	atLast   int  // lines read stamped last
	inStream int  // lines stamped last seen in the current stream
	dropping bool // the over-long line being read was read before
	// progressed is set when the current stream delivered a line not read
	// before.
	progressed bool
}

// fresh strips the timestamp of one log record and reports whether it was
// not read before. more marks the rest of an over-long line.
func (r *resume) fresh(record []byte, more bool) ([]byte, bool) {
	if more {
		return record, !r.dropping
	}
	stamp, rest, ok := bytes.Cut(record, []byte(" "))
	t, err := time.Parse(time.RFC3339Nano, string(stamp))
	if !ok || err != nil {
		return record, true // no timestamp: cannot be matched, so keep it
	}
	switch {
	case t.Before(r.last):
		r.dropping = true
	case t.Equal(r.last):
		r.inStream++
		r.dropping = r.inStream <= r.atLast
		if !r.dropping {
			r.atLast++
		}
	default:
		r.last, r.atLast, r.inStream, r.dropping = t, 1, 1, false
	}
	return rest, !r.dropping
}

// restart prepares for a new stream.
func (r *resume) restart() { r.inStream, r.progressed, r.dropping = 0, false, false }
