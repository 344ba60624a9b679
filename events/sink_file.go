package events

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
)

// NewFileSink returns a sink appending one line per event to path. Before a
// write would take the file past maxBytes (0: no limit) it is rotated:
// path.N-1 becomes path.N ... path becomes path.1, keeping backups old files
// (0: the full file is removed). The file is opened now, so a bad path is an
// error at start-up; buffer, m and log are as for NewWriterSink. Close
// closes the file.
func NewFileSink(path string, maxBytes int64, backups, buffer int, m *Metrics, log *slog.Logger) (Sink, error) {
	f := &rotatingFile{path: path, max: maxBytes, backups: backups}
	if err := f.open(); err != nil {
		return nil, err
	}
	return newWriterSink(f, f, buffer, m, log), nil
}

// rotatingFile is an append-only file rotated by size.
type rotatingFile struct {
	path    string
	max     int64
	backups int

	mu   sync.Mutex
	f    *os.File
	size int64
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open events file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open events file: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends the lines in p, rotating before a line that would not fit.
func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	written := 0
	for len(p) > 0 {
		if r.f == nil {
			if err := r.open(); err != nil {
				return written, err
			}
		}
		n := r.fits(p)
		if n == 0 {
			if err := r.rotate(); err != nil {
				return written, err
			}
			continue
		}
		m, err := r.f.Write(p[:n])
		r.size += int64(m)
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// fits returns the length of the whole lines at the start of p that fit in
// the file, or, in an empty file, at least p's first line.
func (r *rotatingFile) fits(p []byte) int {
	if r.max <= 0 {
		return len(p)
	}
	n := 0
	for n < len(p) {
		end := bytes.IndexByte(p[n:], '\n') + 1
		if end == 0 {
			end = len(p) - n
		}
		if r.size+int64(n+end) > r.max && (r.size > 0 || n > 0) {
			break
		}
		n += end
	}
	return n
}

func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	r.f = nil
	name := func(i int) string {
		if i == 0 {
			return r.path
		}
		return r.path + "." + strconv.Itoa(i)
	}
	if r.backups <= 0 {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for i := r.backups; i >= 1; i-- {
		if err := os.Rename(name(i-1), name(i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate events file: %w", err)
		}
	}
	return r.open()
}

// Close closes the file.
func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
