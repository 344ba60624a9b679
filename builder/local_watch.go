package builder

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/events"
)

// retryDelay spaces attempts to follow a container log whose stream broke.
const retryDelay = 200 * time.Millisecond

// engineRetryDelay spaces attempts to reach an engine that failed a call.
const engineRetryDelay = time.Second

// maxBrokenLogs is how many log streams of a stopped container may break in
// a row before the build ends without the rest of its log.
const maxBrokenLogs = 3

// containerWatch follows one build container from creation to its end.
type containerWatch struct {
	l   *Local
	req binderbuild.BuildRequest

	deadline <-chan time.Time // fires at the build timeout, once started

	logRecorder
}

// run returns when the build ended: nil on success, an *events.Failure, or
// ctx's error when the server stops (the container then keeps building and
// a later request attaches to it).
func (w *containerWatch) run(ctx context.Context) error {
	broken := 0 // log streams in a row that broke
	for {
		state, err := w.state(ctx)
		if err != nil {
			return err
		}
		if w.deadline == nil && w.l.cfg.Build.BuildTimeout > 0 { // 0: no timeout, as upstream
			t := time.NewTimer(w.remaining(state))
			defer t.Stop()
			w.deadline = t.C
		}
		if !state.Running && !state.Restarting && broken >= maxBrokenLogs {
			// The log cannot be read (e.g. a log driver without reads):
			// the exit code decides.
			w.l.remove(ctx, w.req.Name)
			return w.result(state)
		}
		followed, err := w.followUntil(ctx)
		if err != nil {
			return err
		}
		if !followed {
			// The stream broke (engine restart?): follow again, after the
			// records read.
			broken++
			if err := w.sleep(ctx, engineRetryDelay); err != nil {
				return err
			}
			continue
		}
		broken = 0
		state, err = w.state(ctx)
		if err != nil {
			return err
		}
		if !state.Running && !state.Restarting {
			w.l.remove(ctx, w.req.Name)
			return w.result(state)
		}
		// The log ended while the container runs: follow it again.
		if err := w.sleep(ctx, retryDelay); err != nil {
			return err
		}
	}
}

// sleep waits for d; it ends the build when the timeout passes meanwhile.
func (w *containerWatch) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-w.deadline: // nil before the start: never
		return w.timedOut(ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// timedOut removes the container of a build past its timeout.
func (w *containerWatch) timedOut(ctx context.Context) error {
	w.l.remove(ctx, w.req.Name)
	return events.Fail(events.CauseDeadline, timeoutMessage(w.l.cfg.Build.BuildTimeout)+w.tailText())
}

// remaining is what is left of the build timeout, counted from the
// container's start.
func (w *containerWatch) remaining(state *container.State) time.Duration {
	timeout := w.l.cfg.Build.BuildTimeout
	started, err := time.Parse(time.RFC3339Nano, state.StartedAt)
	if err != nil || started.Year() < 2000 { // not started: "0001-01-01T00:00:00Z"
		return timeout
	}
	return max(timeout-time.Since(started), 0)
}

// state inspects the container, starting it when it was created but not
// started (by this build, or by one interrupted by a restart). Engine errors
// are retried until ctx ends; a container gone is the build's end.
func (w *containerWatch) state(ctx context.Context) (*container.State, error) {
	for {
		ictx, cancel := context.WithTimeout(ctx, engineTimeout)
		res, err := w.l.engine.ContainerInspect(ictx, w.req.Name, client.ContainerInspectOptions{})
		cancel()
		switch {
		case err == nil && res.Container.State == nil:
			err = errors.New("no container state")
		case err == nil:
			st := res.Container.State
			if st.Status != container.StateCreated {
				return st, nil
			}
			sctx, cancel := context.WithTimeout(ctx, engineTimeout)
			_, err = w.l.engine.ContainerStart(sctx, w.req.Name, client.ContainerStartOptions{})
			cancel()
			if err == nil {
				continue
			}
			if ctx.Err() == nil {
				w.l.remove(ctx, w.req.Name)
				w.l.log.ErrorContext(ctx, "start build container", "container", w.req.Name, "error", err)
				return nil, events.Fail(events.CauseFailed, fmt.Sprintf("Build failed: the container engine could not start the build container: %v\n", err))
			}
		case cerrdefs.IsNotFound(err):
			if err := w.failed(); err != nil {
				return nil, err
			}
			return nil, events.Fail(events.CauseCancelled, "Build failed: the build container was removed before the build finished.\n"+w.tailText())
		}
		if err != nil && ctx.Err() == nil {
			w.l.log.WarnContext(ctx, "inspect build container", "container", w.req.Name, "error", err)
		}
		if err := w.sleep(ctx, engineRetryDelay); err != nil {
			return nil, err
		}
	}
}

// followUntil follows the log until it ends, the deadline passes or ctx
// ends. followed reports a log read to its end.
func (w *containerWatch) followUntil(ctx context.Context) (followed bool, err error) {
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- w.follow(fctx) }()
	select {
	case err := <-done:
		if err != nil && ctx.Err() == nil {
			w.l.log.Warn("follow build log", "container", w.req.Name, "error", err)
		}
		return err == nil, ctx.Err()
	case <-w.deadline:
		stop()
		<-done
		return false, w.timedOut(ctx)
	case <-ctx.Done():
		stop()
		<-done
		return false, ctx.Err()
	}
}

// follow reads the container's log from its start, skipping the records
// read by an earlier stream, until the container stops.
func (w *containerWatch) follow(ctx context.Context) error {
	rc, err := w.l.engine.ContainerLogs(ctx, w.req.Name, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: true,
	})
	if err != nil {
		return fmt.Errorf("open log of %s: %w", w.req.Name, err)
	}
	defer rc.Close()
	n := 0
	return demuxLines(rc, func(line []byte) {
		if n >= w.records {
			w.record(line)
			w.records++
		}
		n++
	})
}

// result is the build's outcome once its container stopped and its log was
// read.
func (w *containerWatch) result(state *container.State) error {
	if err := w.failed(); err != nil {
		return err
	}
	if state.ExitCode == 0 {
		return nil
	}
	cause, msg := exitFailure(state.ExitCode, state.OOMKilled)
	return events.Fail(cause, msg+w.tailText())
}

// demuxLines splits the engine's multiplexed log stream (8-byte frame
// headers: stream, 3 zero bytes, big-endian length) into lines, keeping each
// stream's partial line apart, and calls emit for each line in arrival
// order. A line longer than maxLogLine is emitted in pieces. At the end of
// the stream the partial lines are emitted; a broken stream drops them (they
// are read again by the next follow).
func demuxLines(r io.Reader, emit func([]byte)) error {
	var hdr [8]byte
	var partial [3][]byte // stdin, stdout, stderr
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				for _, p := range partial {
					if len(p) > 0 {
						emit(p)
					}
				}
				return nil
			}
			return err
		}
		stream, size := hdr[0], int64(binary.BigEndian.Uint32(hdr[4:]))
		if stream > 2 { // 3: the engine's own error
			msg, _ := io.ReadAll(io.LimitReader(r, size))
			return fmt.Errorf("log stream error: %s", msg)
		}
		for size > 0 {
			n, err := io.ReadFull(r, buf[:min(size, int64(len(buf)))])
			size -= int64(n)
			chunk := buf[:n]
			for len(chunk) > 0 {
				i := bytes.IndexByte(chunk, '\n') + 1 // 0: no newline
				if i > 0 {
					emit(append(partial[stream], chunk[:i]...))
					partial[stream] = partial[stream][:0]
				} else {
					i = len(chunk)
					partial[stream] = append(partial[stream], chunk...)
					if len(partial[stream]) >= maxLogLine {
						emit(partial[stream])
						partial[stream] = partial[stream][:0]
					}
				}
				chunk = chunk[i:]
			}
			if err != nil {
				return err
			}
		}
	}
}
