package launcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// maxProgressEvent bounds one event of the hub's progress stream.
const maxProgressEvent = 1 << 20

// progressEvent is one event of JupyterHub's spawn progress stream.
type progressEvent struct {
	Message string `json:"message"`
	Ready   bool   `json:"ready"`
	Failed  bool   `json:"failed"`
}

// waitReady follows the spawn progress of the server until it is ready,
// failed, or LaunchTimeout passed.
func (l *Launcher) waitReady(ctx context.Context, image, user, server string, progress func(string)) error {
	path := "users/" + quote(user) + "/server/progress"
	if server != "" {
		path = "users/" + quote(user) + "/servers/" + quote(server) + "/progress"
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.LaunchTimeout)
	defer cancel()
	timedOut := func(err error) error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return launchError(http.StatusInternalServerError, "Image "+image+" for user "+user+" took too long to launch", err)
		}
		return err
	}
	resp, err := l.request(ctx, http.MethodGet, path, nil)
	if err != nil {
		if ctx.Err() != nil {
			return timedOut(err)
		}
		return launchError(http.StatusInternalServerError, "Failed to launch image "+image, err)
	}
	defer resp.Body.Close()
	ready, err := readProgress(resp.Body, progress)
	if err != nil {
		return timedOut(err)
	}
	if !ready {
		return launchError(http.StatusInternalServerError, "Image "+image+" for user "+user+" failed to launch", nil)
	}
	return nil
}

// readProgress reads server-sent events until one says ready (true) or
// failed (a *binderbuild.LaunchError with the hub's message), passing
// every message to progress. The stream ending first returns false.
func readProgress(body io.Reader, progress func(string)) (bool, error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4096), maxProgressEvent)
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		var ev progressEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return false, err
		}
		progress(ev.Message)
		switch {
		case ev.Ready:
			return true, nil
		case ev.Failed:
			msg := ev.Message
			if msg == "" {
				msg = "unknown error"
			}
			return false, launchError(http.StatusInternalServerError, msg, nil)
		}
	}
	return false, sc.Err()
}
