// Package embedded is the OCI distribution registry that binderbuild serves
// itself in single-machine mode, when no external registry is configured:
// builds push to it and the cache check reads it. Blobs and manifests live
// on disk, so images survive restarts.
//
// It implements the parts of the distribution API that docker push and
// pull, go-containerregistry and `binderbuild gc` use: blob HEAD/GET (with
// ranges), chunked, streamed and monolithic uploads, cross-repository
// mounts, manifest HEAD/GET/PUT/DELETE, tag lists and the catalog. There is
// no authentication: serve it on a loopback address. Unlike
// go-containerregistry's pkg/registry it never holds an upload in memory:
// layers of several GB stream to disk while their digest is computed.
//
// Layout under the storage folder:
//
//	blobs/sha256/<hex>                        every blob and manifest, by digest
//	repositories/<name>/_manifests/sha256/<hex>   the manifest's media type: it belongs to <name>
//	repositories/<name>/_tags/<tag>           the digest the tag points to
//	uploads/<id>                              uploads in progress (cleared at start)
//
// Blobs no manifest references any more are kept (there is no blob garbage
// collection).
package embedded

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxManifest bounds a manifest, as distribution does.
const maxManifest = 4 << 20

// uploadIdle is how long an upload may go without a request before a new
// upload discards it.
const uploadIdle = time.Hour

var (
	// nameRE is the distribution spec's repository name; it keeps names
	// from escaping the storage folder.
	nameRE   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// Registry is the registry's http.Handler. It is safe for concurrent use.
type Registry struct {
	dir string
	log *slog.Logger

	// mu orders manifest and tag writes against reads of several files.
	mu sync.RWMutex

	umu     sync.Mutex
	uploads map[string]*upload
}

// upload is a blob being uploaded: its file and the running digest.
type upload struct {
	mu   sync.Mutex
	f    *os.File
	h    hash.Hash
	size int64
	used time.Time
}

// New returns a registry storing under dir, created if missing. It fails
// when dir cannot be written. Uploads left by an earlier process are
// removed. log may be nil.
func New(dir string, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{"blobs/sha256", "repositories"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("registry storage: %w", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, "uploads")); err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "uploads"), 0o755); err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	probe, err := os.CreateTemp(filepath.Join(dir, "uploads"), "probe-*")
	if err != nil {
		return nil, fmt.Errorf("registry storage %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Registry{dir: dir, log: log, uploads: make(map[string]*upload)}, nil
}

// regError is an error response of the distribution API.
type regError struct {
	status  int
	code    string
	message string
}

func (e *regError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *regError {
	return &regError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (e *regError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": e.code, "message": e.message}}})
}

// ServeHTTP serves the distribution API under /v2/.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := r.route(w, req); err != nil {
		var re *regError
		if !errors.As(err, &re) {
			r.log.Error("registry request", "method", req.Method, "path", req.URL.Path, "error", err)
			re = errorf(http.StatusInternalServerError, "UNKNOWN", "internal error")
		}
		re.write(w)
	}
}

func (r *Registry) route(w http.ResponseWriter, req *http.Request) error {
	p := strings.TrimSuffix(req.URL.Path, "/")
	if p == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return nil
	}
	if p == "/v2/_catalog" {
		return r.catalog(w, req)
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return errorf(http.StatusNotFound, "NOT_FOUND", "not a registry path")
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	name := func(k int) (string, error) { // the name before the last k segments
		if n <= k {
			return "", errorf(http.StatusNotFound, "NAME_INVALID", "no repository name")
		}
		nm := strings.Join(seg[:n-k], "/")
		if !nameRE.MatchString(nm) || len(nm) > 255 {
			return "", errorf(http.StatusBadRequest, "NAME_INVALID", "invalid repository name %q", nm)
		}
		return nm, nil
	}
	switch {
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		nm, err := name(2)
		if err != nil {
			return err
		}
		return r.tags(w, req, nm)
	case n >= 3 && seg[n-2] == "manifests":
		nm, err := name(2)
		if err != nil {
			return err
		}
		return r.manifest(w, req, nm, seg[n-1])
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		nm, err := name(2)
		if err != nil {
			return err
		}
		return r.startUpload(w, req, nm)
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		nm, err := name(3)
		if err != nil {
			return err
		}
		return r.continueUpload(w, req, nm, seg[n-1])
	case n >= 3 && seg[n-2] == "blobs":
		if _, err := name(2); err != nil {
			return err
		}
		return r.blob(w, req, seg[n-1])
	}
	return errorf(http.StatusNotFound, "NOT_FOUND", "not a registry path")
}

func (r *Registry) blobPath(digest string) string {
	return filepath.Join(r.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func (r *Registry) repoPath(name string, parts ...string) string {
	return filepath.Join(append([]string{r.dir, "repositories", filepath.FromSlash(name)}, parts...)...)
}

func checkDigest(d string) error {
	if !digestRE.MatchString(d) {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "unsupported or invalid digest %q (want sha256:<64 hex>)", d)
	}
	return nil
}

// blob serves HEAD and GET of a blob. Blobs are shared by all repositories.
func (r *Registry) blob(w http.ResponseWriter, req *http.Request, digest string) error {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s of a blob is not supported", req.Method)
	}
	if err := checkDigest(digest); err != nil {
		return err
	}
	f, err := os.Open(r.blobPath(digest))
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

// startUpload serves POST .../blobs/uploads/: a mount from another
// repository, a monolithic upload (?digest=) or the start of an upload
// session.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, name string) error {
	if req.Method != http.MethodPost {
		return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s of blobs/uploads is not supported", req.Method)
	}
	q := req.URL.Query()
	if d := q.Get("mount"); d != "" && digestRE.MatchString(d) {
		if _, err := os.Stat(r.blobPath(d)); err == nil {
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
	f, err := os.OpenFile(filepath.Join(r.dir, "uploads", id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", nil, err
	}
	u := &upload{f: f, h: sha256.New(), used: time.Now()}
	r.umu.Lock()
	defer r.umu.Unlock()
	for old, o := range r.uploads { // abandoned uploads
		if o.mu.TryLock() {
			if time.Since(o.used) > uploadIdle {
				r.dropLocked(old, o)
			}
			o.mu.Unlock()
		}
	}
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
	u.used = time.Now()
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
		if err := u.append(req); err != nil {
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
// must start where the upload ends.
func (u *upload) append(req *http.Request) error {
	if cr := req.Header.Get("Content-Range"); cr != "" {
		start, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes="), "-")
		if s, err := strconv.ParseInt(start, 10, 64); err != nil || s != u.size {
			return errorf(http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "chunk starts at %q, upload has %d bytes", start, u.size)
		}
	}
	n, err := io.Copy(io.MultiWriter(u.f, u.h), req.Body)
	u.size += n
	if err != nil {
		return fmt.Errorf("write upload: %w", err)
	}
	return nil
}

// finishUpload appends the request body, checks the digest and moves the
// blob in place. The session ends either way. u.mu is held.
func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request, name, id string, u *upload, digest string) error {
	defer r.drop(id, u)
	if err := checkDigest(digest); err != nil {
		return err
	}
	if err := u.append(req); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(u.h.Sum(nil)); got != digest {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "upload has digest %s, not %s", got, digest)
	}
	if err := u.f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(u.f.Name(), r.blobPath(digest)); err != nil {
		return err
	}
	return blobCreated(w, name, digest)
}

// manifest serves HEAD, GET, PUT and DELETE of a manifest by tag or digest.
func (r *Registry) manifest(w http.ResponseWriter, req *http.Request, name, ref string) error {
	isDigest := strings.Contains(ref, ":")
	if isDigest {
		if err := checkDigest(ref); err != nil {
			return err
		}
	} else if !tagRE.MatchString(ref) {
		return errorf(http.StatusBadRequest, "TAG_INVALID", "invalid tag %q", ref)
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		r.mu.RLock()
		digest, mediaType, err := r.resolve(name, ref)
		r.mu.RUnlock()
		if err != nil {
			return err
		}
		f, err := os.Open(r.blobPath(digest))
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", mediaType)
		w.Header().Set("Docker-Content-Digest", digest)
		w.Header().Set("ETag", `"`+digest+`"`)
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			_, _ = io.Copy(w, f)
		}
		return nil
	case http.MethodPut:
		return r.putManifest(w, req, name, ref, isDigest)
	case http.MethodDelete:
		return r.deleteManifest(w, name, ref, isDigest)
	}
	return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s of a manifest is not supported", req.Method)
}

// resolve returns the digest and media type of name's manifest ref; r.mu is
// held.
func (r *Registry) resolve(name, ref string) (digest, mediaType string, err error) {
	digest = ref
	if !strings.Contains(ref, ":") {
		b, err := os.ReadFile(r.repoPath(name, "_tags", ref))
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", errorf(http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown to registry")
		}
		if err != nil {
			return "", "", err
		}
		digest = strings.TrimSpace(string(b))
	}
	mt, err := os.ReadFile(r.repoPath(name, "_manifests", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", errorf(http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown to registry")
	}
	if err != nil {
		return "", "", err
	}
	return digest, string(mt), nil
}

// manifestRefs is what PUT checks in a manifest: the blobs of an image
// manifest, the manifests of an index.
type manifestRefs struct {
	MediaType string `json:"mediaType"`
	Config    *struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		Digest string   `json:"digest"`
		URLs   []string `json:"urls"`
	} `json:"layers"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
}

func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, name, ref string, isDigest bool) error {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if len(body) > maxManifest {
		return errorf(http.StatusRequestEntityTooLarge, "MANIFEST_INVALID", "manifest larger than %d bytes", maxManifest)
	}
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if isDigest && ref != digest {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "manifest has digest %s, not %s", digest, ref)
	}
	var m manifestRefs
	if err := json.Unmarshal(body, &m); err != nil {
		return errorf(http.StatusBadRequest, "MANIFEST_INVALID", "manifest is not JSON: %v", err)
	}
	mediaType, _, _ := strings.Cut(req.Header.Get("Content-Type"), ";")
	if mediaType == "" {
		mediaType = m.MediaType
	}
	if mediaType == "" {
		mediaType = "application/vnd.oci.image.manifest.v1+json"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkRefs(name, m); err != nil {
		return err
	}
	if err := writeFile(r.blobPath(digest), body); err != nil {
		return err
	}
	if err := writeFile(r.repoPath(name, "_manifests", "sha256", hex.EncodeToString(sum[:])), []byte(mediaType)); err != nil {
		return err
	}
	if !isDigest {
		if err := writeFile(r.repoPath(name, "_tags", ref), []byte(digest)); err != nil {
			return err
		}
	}
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// checkRefs fails a manifest whose blobs or child manifests are missing,
// so that what a HEAD finds can be pulled.
func (r *Registry) checkRefs(name string, m manifestRefs) error {
	var blobs []string
	if m.Config != nil {
		blobs = append(blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if len(l.URLs) == 0 { // foreign layers live elsewhere
			blobs = append(blobs, l.Digest)
		}
	}
	for _, d := range blobs {
		if !digestRE.MatchString(d) {
			return errorf(http.StatusBadRequest, "MANIFEST_INVALID", "invalid digest %q", d)
		}
		if _, err := os.Stat(r.blobPath(d)); err != nil {
			return errorf(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob %s unknown to registry", d)
		}
	}
	for _, c := range m.Manifests {
		if !digestRE.MatchString(c.Digest) {
			return errorf(http.StatusBadRequest, "MANIFEST_INVALID", "invalid digest %q", c.Digest)
		}
		if _, _, err := r.resolve(name, c.Digest); err != nil {
			return errorf(http.StatusBadRequest, "MANIFEST_UNKNOWN", "manifest %s unknown to registry", c.Digest)
		}
	}
	return nil
}

// deleteManifest deletes a tag, or a manifest with every tag pointing to it.
func (r *Registry) deleteManifest(w http.ResponseWriter, name, ref string, isDigest bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	digest, _, err := r.resolve(name, ref)
	if err != nil {
		return err
	}
	if !isDigest {
		if err := os.Remove(r.repoPath(name, "_tags", ref)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	tags, err := r.tagList(name)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if b, err := os.ReadFile(r.repoPath(name, "_tags", t)); err == nil && string(b) == digest {
			if err := os.Remove(r.repoPath(name, "_tags", t)); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(r.repoPath(name, "_manifests", "sha256", strings.TrimPrefix(digest, "sha256:"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (r *Registry) tagList(name string) ([]string, error) {
	entries, err := os.ReadDir(r.repoPath(name, "_tags"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tags := make([]string, 0, len(entries))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			tags = append(tags, e.Name())
		}
	}
	return tags, nil
}

// tags serves GET .../tags/list, paginated by n and last.
func (r *Registry) tags(w http.ResponseWriter, req *http.Request, name string) error {
	r.mu.RLock()
	_, err := os.Stat(r.repoPath(name, "_manifests"))
	var tags []string
	if err == nil {
		tags, err = r.tagList(name)
	}
	r.mu.RUnlock()
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
	}
	if err != nil {
		return err
	}
	page, err := paginate(w, req, tags)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"name": name, "tags": page})
}

// catalog serves GET /v2/_catalog, paginated by n and last.
func (r *Registry) catalog(w http.ResponseWriter, req *http.Request) error {
	root := filepath.Join(r.dir, "repositories")
	var repos []string
	r.mu.RLock()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "_manifests" {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			repos = append(repos, filepath.ToSlash(rel))
			return fs.SkipDir
		}
		if d.IsDir() && d.Name() == "_tags" {
			return fs.SkipDir
		}
		return nil
	})
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	page, err := paginate(w, req, repos)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"repositories": page})
}

// paginate sorts items and returns those after ?last=, at most ?n=, with a
// Link header to the next page.
func paginate(w http.ResponseWriter, req *http.Request, items []string) ([]string, error) {
	slices.Sort(items)
	q := req.URL.Query()
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(items, last)
		for i < len(items) && items[i] <= last {
			i++
		}
		items = items[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			return nil, errorf(http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "invalid n %q", ns)
		}
		if n < len(items) {
			items = items[:n]
			if n > 0 {
				next := url.Values{"n": {ns}, "last": {items[n-1]}}
				w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
			}
		}
	}
	if items == nil {
		items = []string{}
	}
	return items, nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// writeFile writes data to path atomically, creating its folder.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
