package repoproviders

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// userAgent is what upstream BinderHub sends to every API.
const userAgent = "BinderHub"

// maxAPIBody bounds how much of an API response is read. GitHub's commit
// responses carry the changed files and can be large, but "sha" comes first.
const maxAPIBody = 8 << 20

// defaultAPITimeout bounds one API request (upstream: tornado's 20 s).
const defaultAPITimeout = 20 * time.Second

// orDefault returns v, or def when v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// discardIfNil returns log, or a logger that drops everything.
func discardIfNil(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// clientOrDefault returns c, or a client with timeout when c is nil.
func clientOrDefault(c *http.Client, timeout time.Duration) *http.Client {
	if c == nil {
		return &http.Client{Timeout: timeout}
	}
	return c
}

// errNotJSONObject is returned by stringField for a body that is not a JSON
// object.
var errNotJSONObject = errors.New("response is not a JSON object")

// stringField reads the top-level field of the JSON object in r, stopping as
// soon as it is found. found is false when the object has no such field;
// a field that is not a string is found with value "".
func stringField(r io.Reader, field string) (value string, found bool, err error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	if tok != json.Delim('{') {
		return "", false, errNotJSONObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", false, err
		}
		if tok == field {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return "", true, nil
			}
			return s, true, nil
		}
	}
	return "", false, nil
}
