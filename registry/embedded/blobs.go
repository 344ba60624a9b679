package embedded

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// blob serves HEAD and GET of a blob. Blobs are shared by all repositories.
func (r *Registry) blob(w http.ResponseWriter, req *http.Request, digest string) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s of a blob is not supported", req.Method)
	}
	if err := checkDigest(digest); err != nil {
		return err
	}
	f, err := r.openBlob(digest)
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+digest+`"`)
	w.Header().Set("Cache-Control", "max-age=31536000")
	http.ServeContent(w, req, "", fi.ModTime(), f)
	return nil
}

// openBlob opens a blob and marks it recently used: a client that finds it
// may push a manifest naming it next. An open blob stays readable even if
// garbage collection removes it.
func (r *Registry) openBlob(digest string) (*os.File, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, err := os.Open(r.blobPath(digest))
	if err == nil {
		r.touch(r.blobPath(digest))
	}
	return f, err
}

// touch sets a blob's modification time, which garbage collection reads as
// its last use.
func (r *Registry) touch(path string) {
	now := r.now()
	_ = os.Chtimes(path, now, now)
}

// startUpload serves POST .../blobs/uploads/: a mount from another
// repository, a monolithic upload (?digest=) or the start of an upload
// session.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, name string) error {
	if req.Method != http.MethodPost {
		return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s of blobs/uploads is not supported", req.Method)
	}
	q := req.URL.Query()
	if d := q.Get("mount"); d != "" && digestRE.MatchString(d) {
		if f, err := r.openBlob(d); err == nil {
			f.Close()
			return blobCreated(w, name, d)
		}
	}
	id, u, err := r.newUpload()
	if err != nil {
		return err
	}
	if d := q.Get("digest"); d != "" {
		u.mu.Lock()
		defer u.mu.Unlock()
		return r.finishUpload(w, req, name, id, u, d)
	}
	return uploadAccepted(w, name, id, 0)
}

func blobCreated(w http.ResponseWriter, name, digest string) error {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func uploadAccepted(w http.ResponseWriter, name, id string, size int64) error {
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(size-1, 0)))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (r *Registry) newUpload() (string, *upload, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	f, err := os.OpenFile(filepath.Join(r.dir, "uploads", id), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, err
	}
	now := r.now()
	u := &upload{f: f, h: sha256.New(), started: now, used: now}
	r.umu.Lock()
	defer r.umu.Unlock()
	r.uploads[id] = u
	return id, u, nil
}

// dropLocked forgets an upload and removes its file; r.umu and u.mu are held.
func (r *Registry) dropLocked(id string, u *upload) {
	delete(r.uploads, id)
	u.f.Close()
	os.Remove(u.f.Name())
	u.used = time.Time{} // requests that found it before see it gone
}

func (r *Registry) drop(id string, u *upload) {
	r.umu.Lock()
	defer r.umu.Unlock()
	r.dropLocked(id, u)
}

// continueUpload serves PATCH (a chunk), PUT (the last chunk and the
// digest), GET (progress) and DELETE (cancel) of an upload session.
func (r *Registry) continueUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	r.umu.Lock()
	u, ok := r.uploads[id]
	r.umu.Unlock()
	if !ok {
		return errorf(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used.IsZero() {
		return errorf(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
	}
	u.used = r.now()
	switch req.Method {
	case http.MethodGet:
		w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
		w.Header().Set("Range", fmt.Sprintf("0-%d", max(u.size-1, 0)))
		w.Header().Set("Docker-Upload-UUID", id)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodDelete:
		r.drop(id, u)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if err := r.append(u, req); err != nil {
			if tooLarge(err) {
				r.drop(id, u)
			}
			return err
		}
		return uploadAccepted(w, name, id, u.size)
	case http.MethodPut:
		d := req.URL.Query().Get("digest")
		return r.finishUpload(w, req, name, id, u, d)
	}
	return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s of an upload is not supported", req.Method)
}

// append writes the request body at the end of the upload. A Content-Range
// must start where the upload ends; the upload may not grow beyond
// Config.MaxUploadSize.
func (r *Registry) append(u *upload, req *http.Request) error {
	if cr := req.Header.Get("Content-Range"); cr != "" {
		start, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes="), "-")
		if s, err := strconv.ParseInt(start, 10, 64); err != nil || s != u.size {
			return errorf(http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "chunk starts at %q, upload has %d bytes", start, u.size)
		}
	}
	limit := int64(r.cfg.MaxUploadSize)
	over := func() error {
		return errorf(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "blob larger than the registry's limit of %s", r.cfg.MaxUploadSize)
	}
	left := limit - u.size
	if req.ContentLength > left {
		return over()
	}
	n, err := io.Copy(io.MultiWriter(u.f, u.h), io.LimitReader(req.Body, left+1))
	u.size += n
	if u.size > limit {
		return over()
	}
	if err != nil {
		return fmt.Errorf("write upload: %w", err)
	}
	return nil
}

// tooLarge tells whether err is append's refusal of an upload over the
// limit, after which the upload is dropped.
func tooLarge(err error) bool {
	var re *regError
	return errors.As(err, &re) && re.status == http.StatusRequestEntityTooLarge
}

// finishUpload appends the request body, checks the digest and moves the
// blob in place. The session ends unless the chunk started at the wrong
// offset (the client may send it again). u.mu is held.
func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request, name, id string, u *upload, digest string) error {
	err := r.complete(u, req, digest)
	var re *regError
	if errors.As(err, &re) && re.status == http.StatusRequestedRangeNotSatisfiable {
		return err
	}
	r.drop(id, u)
	if err != nil {
		return err
	}
	return blobCreated(w, name, digest)
}

// complete is finishUpload's work: append, verify, move in place.
func (r *Registry) complete(u *upload, req *http.Request, digest string) error {
	if err := checkDigest(digest); err != nil {
		return err
	}
	if err := r.append(u, req); err != nil {
		return err
	}
	got, err := u.digest(digest[:strings.IndexByte(digest, ':')])
	if err != nil {
		return err
	}
	if got != digest {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "upload has digest %s, not %s", got, digest)
	}
	if err := u.f.Sync(); err != nil {
		return err
	}
	r.mu.RLock() // not while garbage collection runs
	defer r.mu.RUnlock()
	if err := os.Rename(u.f.Name(), r.blobPath(digest)); err != nil {
		return err
	}
	r.touch(r.blobPath(digest))
	return nil
}

// digest is the upload's digest with the algorithm alg: the running sha256,
// else the file read again (sha512 uploads are rare).
func (u *upload) digest(alg string) (string, error) {
	if alg == "sha256" {
		return "sha256:" + hex.EncodeToString(u.h.Sum(nil)), nil
	}
	h := newHash(alg)
	if _, err := io.Copy(h, io.NewSectionReader(u.f, 0, u.size)); err != nil {
		return "", fmt.Errorf("read upload: %w", err)
	}
	return alg + ":" + hex.EncodeToString(h.Sum(nil)), nil
}
