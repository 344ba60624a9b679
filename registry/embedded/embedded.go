// Package embedded is the OCI distribution registry that binderbuild serves
// itself in single-machine mode, when no external registry is configured:
// builds push to it and the cache check reads it. Blobs and manifests live
// on disk, so images survive restarts.
//
// It implements the OCI distribution specification (pull, push, content
// discovery with tag lists and referrers, content management) and passes
// its conformance suite, plus the catalog: blob HEAD/GET (with ranges),
// chunked, streamed and monolithic uploads, cross-repository mounts,
// manifest HEAD/GET/PUT/DELETE, sha256 and sha512 digests. Blob DELETE is
// not supported (405): blobs go by garbage collection. There is no
// authentication: serve it on a loopback address. Unlike
// go-containerregistry's pkg/registry it never holds an upload in memory:
// layers of several GB stream to disk while their digest is computed.
//
// Layout under the storage folder:
//
//	blobs/<alg>/<hex>                          every blob and manifest, by digest
//	repositories/<name>/_manifests/<alg>/<hex> the manifest's media type: it belongs to <name>
//	repositories/<name>/_tags/<tag>            the digest the tag points to
//	uploads/<id>                               uploads in progress (cleared at start)
//
// Run deletes abandoned uploads and the blobs no manifest references
// (garbage collection); without it nothing is freed.
package embedded

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
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

var (
	// nameRE is the distribution spec's repository name; it keeps names
	// from escaping the storage folder.
	nameRE   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
)

// algorithms are the digest algorithms the registry stores blobs under.
var algorithms = []string{"sha256", "sha512"}

// Registry is the registry's http.Handler. It is safe for concurrent use.
type Registry struct {
	dir string
	cfg Config
	log *slog.Logger
	// now is the clock of upload expiry and of blob ages.
	now func() time.Time

	// mu orders manifest and tag writes against reads of several files.
	// Garbage collection holds it for writing; requests that make a blob
	// recently used (upload, mount, HEAD) hold it for reading, so that a
	// blob a client was just told exists is not deleted before its
	// manifest arrives.
	mu sync.RWMutex

	umu     sync.Mutex
	uploads map[string]*upload

	// deleted wakes Run after a manifest delete (capacity 1: deletes
	// during a collection coalesce into one more).
	deleted chan struct{}
}

// upload is a blob being uploaded: its file and the running sha256.
type upload struct {
	mu      sync.Mutex
	f       *os.File
	h       hash.Hash
	size    int64
	started time.Time
	used    time.Time
}

// New returns a registry storing under dir with the default Config. See
// Open.
func New(dir string, log *slog.Logger) (*Registry, error) {
	return Open(dir, Config{}, log)
}

// Open returns a registry storing under dir, created if missing, with the
// limits of cfg (zero fields: defaults). It fails when dir cannot be
// written. Uploads left by an earlier process are removed. log may be nil.
func Open(dir string, cfg Config, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{"blobs/sha256", "blobs/sha512", "repositories"} {
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
	return &Registry{
		dir:     dir,
		cfg:     cfg.withDefaults(),
		log:     log,
		now:     time.Now,
		uploads: make(map[string]*upload),
		deleted: make(chan struct{}, 1),
	}, nil
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
	case n >= 3 && seg[n-2] == "referrers":
		nm, err := name(2)
		if err != nil {
			return err
		}
		return r.referrers(w, req, nm, seg[n-1])
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
	alg, hx, _ := strings.Cut(digest, ":")
	return filepath.Join(r.dir, "blobs", alg, hx)
}

func (r *Registry) repoPath(name string, parts ...string) string {
	return filepath.Join(append([]string{r.dir, "repositories", filepath.FromSlash(name)}, parts...)...)
}

// manifestLink is the file that says name holds the manifest digest.
func (r *Registry) manifestLink(name, digest string) string {
	alg, hx, _ := strings.Cut(digest, ":")
	return r.repoPath(name, "_manifests", alg, hx)
}

func checkDigest(d string) error {
	if !digestRE.MatchString(d) {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "unsupported or invalid digest %q (want sha256:<64 hex> or sha512:<128 hex>)", d)
	}
	return nil
}

// newHash returns the hash of a digest algorithm of digestRE.
func newHash(alg string) hash.Hash {
	if alg == "sha512" {
		return sha512.New()
	}
	return sha256.New()
}

// digestOf is the digest of data with the algorithm alg.
func digestOf(alg string, data []byte) string {
	h := newHash(alg)
	h.Write(data)
	return alg + ":" + hex.EncodeToString(h.Sum(nil))
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
