package embedded

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Collection is what one garbage collection deleted.
type Collection struct {
	// Blobs is the number of blobs deleted.
	Blobs int
	// Bytes is their total size.
	Bytes int64
}

// Collect deletes the blobs that no manifest of any repository references
// (garbage collection) and returns what it deleted. A blob uploaded,
// mounted or found by HEAD or GET within Config.GCGrace, or since the
// oldest upload in progress started, is kept: it may belong to a push
// whose manifest has not arrived yet. Manifest writes and requests that
// make a blob used wait while Collect runs.
func (r *Registry) Collect() (Collection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep, err := r.mark()
	if err != nil {
		return Collection{}, err
	}
	return r.sweep(keep, r.cutoff())
}

// mark returns every blob that a manifest of a repository needs, manifests
// included; r.mu is held.
func (r *Registry) mark() (map[string]bool, error) {
	repos, err := r.repositories()
	if err != nil {
		return nil, err
	}
	keep := make(map[string]bool)
	for _, name := range repos {
		digests, err := r.manifests(name)
		if err != nil {
			return nil, err
		}
		for _, d := range digests {
			keep[d] = true
			m, _, err := r.readManifest(d)
			if errors.Is(err, fs.ErrNotExist) { // a link without content needs nothing
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, b := range m.blobs() {
				keep[b] = true
			}
			for _, c := range m.Manifests {
				keep[c.Digest] = true
			}
		}
	}
	return keep, nil
}

// cutoff is the time after which a blob counts as in use.
func (r *Registry) cutoff() time.Time {
	c := r.now().Add(-r.cfg.GCGrace)
	r.umu.Lock()
	defer r.umu.Unlock()
	for _, u := range r.uploads {
		if u.started.Before(c) {
			c = u.started
		}
	}
	return c
}

// sweep deletes the blobs not in keep and last used before cutoff; r.mu is
// held.
func (r *Registry) sweep(keep map[string]bool, cutoff time.Time) (Collection, error) {
	var c Collection
	for _, alg := range algorithms {
		dir := filepath.Join(r.dir, "blobs", alg)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return c, err
		}
		for _, e := range entries {
			if e.IsDir() || keep[alg+":"+e.Name()] {
				continue
			}
			fi, err := e.Info()
			if err != nil || fi.ModTime().After(cutoff) {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return c, err
			}
			c.Blobs++
			c.Bytes += fi.Size()
		}
	}
	return c, nil
}

// expireUploads drops the uploads that got no request within
// Config.UploadTTL and returns how many it dropped.
func (r *Registry) expireUploads() int {
	cutoff := r.now().Add(-r.cfg.UploadTTL)
	r.umu.Lock()
	defer r.umu.Unlock()
	n := 0
	for id, u := range r.uploads {
		if !u.mu.TryLock() { // a request is using it
			continue
		}
		if u.used.Before(cutoff) {
			r.dropLocked(id, u)
			n++
		}
		u.mu.Unlock()
	}
	return n
}

// Run deletes abandoned uploads (every half Config.UploadTTL) and collects
// garbage (every Config.GCInterval and after manifest deletes) until ctx
// ends. It logs what it deleted and its errors.
func (r *Registry) Run(ctx context.Context) {
	expire := time.NewTicker(max(r.cfg.UploadTTL/2, time.Millisecond))
	defer expire.Stop()
	collect := time.NewTicker(r.cfg.GCInterval)
	defer collect.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			if n := r.expireUploads(); n > 0 {
				r.log.Info("abandoned uploads deleted", "uploads", n)
			}
		case <-collect.C:
			r.collect()
		case <-r.deleted:
			r.collect()
		}
	}
}

func (r *Registry) collect() {
	c, err := r.Collect()
	if err != nil {
		r.log.Error("registry garbage collection", "error", err)
		return
	}
	if c.Blobs > 0 {
		r.log.Info("registry garbage collection", "blobs_deleted", c.Blobs, "bytes_freed", c.Bytes)
	}
}
