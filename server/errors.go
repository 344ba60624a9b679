package server

import (
	"context"
	"errors"
	"net/http"

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

// fail is the one place that turns an error into the stream's last event.
// Internal details are logged, never sent.
func (s *Server) fail(st *stream, r *http.Request, err error) {
	var re *requestError
	var bf *events.Failure
	switch {
	case errors.As(err, &re):
		if re.cause != nil {
			s.log.WarnContext(r.Context(), "build request failed", "path", r.URL.Path, "error", re.cause)
		}
		_ = st.send(events.Failed(re.status, re.msg))
	case errors.As(err, &bf):
		_ = st.send(bf.Event)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client left; nobody is listening.
	default:
		s.log.ErrorContext(r.Context(), "build request failed", "path", r.URL.Path, "error", err)
		_ = st.send(events.Failed(http.StatusInternalServerError, "Internal Server Error\n"))
	}
}
