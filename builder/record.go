package builder

import (
	"fmt"
	"strings"
	"time"

	"github.com/binderbuild/binderbuild/events"
)

// logRecorder forwards a build's log lines to its event log and keeps what
// the build's end needs: repo2docker's own failed line and the last
// messages. Pod and container watches embed it.
type logRecorder struct {
	log      *events.Log
	records  int          // log records read, skipped when following again
	failLine events.Event // repo2docker's own failed line, if any
	tail     []string     // last log messages, for failure messages
}

// record forwards one log line, keeping repo2docker's failed line for the
// end instead of sending it at once.
func (r *logRecorder) record(line []byte) {
	e := events.FromLogLine(line)
	if msg := messageOf(e); msg != "" {
		if len(r.tail) == tailLines {
			r.tail = r.tail[1:]
		}
		r.tail = append(r.tail, msg)
	}
	if e.Terminal() {
		if r.failLine.Data == nil {
			r.failLine = e
		}
		return
	}
	r.log.Append(e)
}

// failed is the failure repo2docker reported itself, or nil.
func (r *logRecorder) failed() error {
	if r.failLine.Data == nil {
		return nil
	}
	return &events.Failure{Cause: events.CauseFailed, Event: r.failLine}
}

func (r *logRecorder) tailText() string {
	if len(r.tail) == 0 {
		return ""
	}
	return "Last log lines:\n" + strings.Join(r.tail, "")
}

// timeoutMessage is the failure message of a build stopped at its timeout,
// the same whichever clock stopped it: the server's or the kubelet's
// (the pod's activeDeadlineSeconds).
func timeoutMessage(timeout time.Duration) string {
	return fmt.Sprintf("Build failed: it took longer than the build timeout of %s.\n", timeout)
}

// exitFailure says why a build container that exited with code failed.
func exitFailure(code int, oomKilled bool) (events.Cause, string) {
	if oomKilled {
		return events.CauseOOM, fmt.Sprintf("Build failed: the build ran out of memory (OOMKilled, exit code %d).\n", code)
	}
	return events.CauseFailed, fmt.Sprintf("Build failed: repo2docker exited with code %d.\n", code)
}
