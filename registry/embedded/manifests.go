package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
		digest, mediaType, f, err := r.openManifest(name, ref)
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

// openManifest resolves name's manifest ref and opens it.
func (r *Registry) openManifest(name, ref string) (digest, mediaType string, f *os.File, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	digest, mediaType, err = r.resolve(name, ref)
	if err != nil {
		return "", "", nil, err
	}
	f, err = os.Open(r.blobPath(digest))
	return digest, mediaType, f, err
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
	mt, err := os.ReadFile(r.manifestLink(name, digest))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", errorf(http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown to registry")
	}
	if err != nil {
		return "", "", err
	}
	return digest, string(mt), nil
}

// manifestRefs is what the registry reads in a manifest: the blobs of an
// image manifest and the manifests of an index, which PUT checks and
// garbage collection keeps; the subject and what describes a referrer.
type manifestRefs struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Config       *struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		Digest string   `json:"digest"`
		URLs   []string `json:"urls"`
	} `json:"layers"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
}

// blobs are the blobs m needs in the registry: its config and layers,
// foreign layers excepted.
func (m manifestRefs) blobs() []string {
	var blobs []string
	if m.Config != nil {
		blobs = append(blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if len(l.URLs) == 0 { // foreign layers live elsewhere
			blobs = append(blobs, l.Digest)
		}
	}
	return blobs
}

func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, name, ref string, isDigest bool) error {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if len(body) > maxManifest {
		return errorf(http.StatusRequestEntityTooLarge, "MANIFEST_INVALID", "manifest larger than %d bytes", maxManifest)
	}
	alg := "sha256"
	if isDigest {
		alg = ref[:strings.IndexByte(ref, ':')]
	}
	digest := digestOf(alg, body)
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
	if err := writeFile(r.manifestLink(name, digest), []byte(mediaType)); err != nil {
		return err
	}
	if !isDigest {
		if err := writeFile(r.repoPath(name, "_tags", ref), []byte(digest)); err != nil {
			return err
		}
	}
	if m.Subject != nil {
		w.Header().Set("OCI-Subject", m.Subject.Digest)
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
	for _, d := range m.blobs() {
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
	if m.Subject != nil && !digestRE.MatchString(m.Subject.Digest) {
		return errorf(http.StatusBadRequest, "MANIFEST_INVALID", "invalid subject digest %q", m.Subject.Digest)
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
	if err := os.Remove(r.manifestLink(name, digest)); err != nil {
		return err
	}
	select { // its blobs may be garbage now
	case r.deleted <- struct{}{}:
	default:
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
	r.mu.RLock()
	repos, err := r.repositories()
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

// repositories returns the name of every repository; r.mu is held.
func (r *Registry) repositories() ([]string, error) {
	root := filepath.Join(r.dir, "repositories")
	var repos []string
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
	return repos, err
}

// manifests returns the digests of the manifests name holds; r.mu is held.
func (r *Registry) manifests(name string) ([]string, error) {
	var digests []string
	for _, alg := range algorithms {
		entries, err := os.ReadDir(r.repoPath(name, "_manifests", alg))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if d := alg + ":" + e.Name(); digestRE.MatchString(d) {
				digests = append(digests, d)
			}
		}
	}
	return digests, nil
}

// readManifest parses the manifest digest; r.mu is held.
func (r *Registry) readManifest(digest string) (manifestRefs, int64, error) {
	var m manifestRefs
	body, err := os.ReadFile(r.blobPath(digest))
	if err != nil {
		return m, 0, err
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return m, 0, fmt.Errorf("manifest %s: %w", digest, err)
	}
	return m, int64(len(body)), nil
}

// descriptor is an entry of a referrers list.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// referrers serves GET .../referrers/<digest>: an index of the manifests
// of name whose subject is digest, filtered by ?artifactType=. A subject
// nothing refers to, or that does not exist, has an empty list.
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, name, subject string) error {
	if req.Method != http.MethodGet {
		return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s of referrers is not supported", req.Method)
	}
	if err := checkDigest(subject); err != nil {
		return err
	}
	filter := req.URL.Query().Get("artifactType")
	list, err := r.referrerList(name, subject, filter)
	if err != nil {
		return err
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	return json.NewEncoder(w).Encode(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     list,
	})
}

// referrerList reads every manifest of name: the registry's scale (one
// machine's builds) does not call for an index of subjects.
func (r *Registry) referrerList(name, subject, artifactType string) ([]descriptor, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	digests, err := r.manifests(name)
	if err != nil {
		return nil, err
	}
	list := []descriptor{}
	for _, d := range digests {
		m, size, err := r.readManifest(d)
		if errors.Is(err, fs.ErrNotExist) { // a link without content refers to nothing
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.Subject == nil || m.Subject.Digest != subject {
			continue
		}
		mt, err := os.ReadFile(r.manifestLink(name, d))
		if err != nil {
			return nil, err
		}
		desc := descriptor{MediaType: string(mt), Digest: d, Size: size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if desc.ArtifactType == "" && m.Config != nil { // an image manifest's artifact type is its config's
			desc.ArtifactType = m.Config.MediaType
		}
		if artifactType == "" || desc.ArtifactType == artifactType {
			list = append(list, desc)
		}
	}
	return list, nil
}
