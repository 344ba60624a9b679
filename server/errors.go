package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/binderbuild/binderbuild/auth"
	"github.com/binderbuild/binderbuild/events"
)

// requestError is an error whose message the client sees. A zero status is
// an expected failure: upstream sends those without "status_code".
type requestError struct {
	status int
	msg    string // with its final "\n", as sent
	cause  error  // logged, never sent
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.cause }

// userError is a raised error: a failed event with status_code.
func userError(status int, msg string) error {
	return &requestError{status: status, msg: msg + "\n"}
}

// expected is an expected failure: a failed event without status_code.
func expected(msg string) error { return &requestError{msg: msg + "\n"} }

func resolveError(key string, err error) error {
	return &requestError{msg: "Error resolving ref for " + key + ": " + err.Error() + "\n", cause: err}
}

// fail ends the stream with the event for err.
func (s *Server) fail(st *stream, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client left; nobody is listening
	}
	_ = st.end(s.errorEvent(r.Context(), r.URL.Path, err))
}

// errorEvent is the one place that turns an error into a stream's last
// event. Internal details are logged, never sent.
func (s *Server) errorEvent(ctx context.Context, path string, err error) events.Event {
	var re *requestError
	var ae *auth.Error
	var bf *events.Failure
	switch {
	case errors.As(err, &re):
		if re.cause != nil {
			s.log.WarnContext(ctx, "build request failed", "path", path, "error", re.cause)
		}
		return events.Failed(re.status, re.msg)
	case errors.As(err, &ae):
		if ae.Cause != nil {
			s.log.WarnContext(ctx, "build request failed", "path", path, "error", ae.Cause)
		}
		return events.Failed(ae.Status, ae.Message)
	case errors.As(err, &bf):
		return bf.Event
	default:
		s.log.ErrorContext(ctx, "build request failed", "path", path, "error", err)
		return events.Failed(http.StatusInternalServerError, "Internal Server Error\n")
	}
}

// resultEvent is the last event of a followed build: ready with the image,
// or why it failed.
func (s *Server) resultEvent(ctx context.Context, err error, image string) events.Event {
	if err != nil {
		return s.errorEvent(ctx, "", err)
	}
	return events.New("ready", events.Field{Key: "phase", Value: "ready"},
		events.Field{Key: "message", Value: "Done! Image built\n"}, events.Field{Key: "imageName", Value: image})
}
