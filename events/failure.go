package events

// Cause names why a build ended, with bounded values for metrics.
type Cause string

// The causes a build can end with.
const (
	CauseSuccess       Cause = "success"
	CauseFailed        Cause = "failed"
	CauseOOM           Cause = "oom"
	CauseDeadline      Cause = "deadline"
	CauseEvicted       Cause = "evicted"
	CauseUnschedulable Cause = "unschedulable"
	CauseCancelled     Cause = "cancelled"
)

// Failure is a build that ended without an image. Its Event is sent to every
// client as the stream's last event.
type Failure struct {
	Cause Cause
	Event Event
}

// Fail returns a Failure whose event is {"phase": "failed", "message": msg}.
func Fail(cause Cause, msg string) *Failure {
	return &Failure{Cause: cause, Event: Failed(0, msg)}
}

func (f *Failure) Error() string { return "build " + string(f.Cause) + ": " + string(f.Event.Data) }
