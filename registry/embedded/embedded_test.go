package embedded_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/binderbuild/binderbuild/registry/embedded"
)

// serve starts a registry on dir and returns its host:port.
func serve(t *testing.T, dir string) string {
	t.Helper()
	reg, err := embedded.New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEmbeddedPushPullRestart pushes an image and an index with
// go-containerregistry, pulls them back, and finds them again in a new
// registry on the same folder.
func TestEmbeddedPushPullRestart(t *testing.T) {
	dir := t.TempDir()
	host := serve(t, dir)
	img, err := random.Image(3<<20, 3) // streamed, chunked uploads
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, host+"/binderbuild/org-repo:abc"), img); err != nil {
		t.Fatalf("push image: %v", err)
	}
	if err := remote.WriteIndex(ref(t, host+"/binderbuild/multi:v1"), idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	check := func(host string) {
		t.Helper()
		want, _ := img.Digest()
		desc, err := remote.Head(ref(t, host+"/binderbuild/org-repo:abc"))
		if err != nil {
			t.Fatalf("Head: %v", err)
		}
		if desc.Digest != want {
			t.Errorf("Head digest = %s, want %s", desc.Digest, want)
		}
		got, err := remote.Image(ref(t, host+"/binderbuild/org-repo@"+want.String()))
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		layers, err := got.Layers()
		if err != nil || len(layers) != 3 {
			t.Fatalf("pulled %d layers (%v), want 3", len(layers), err)
		}
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest on close
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatal(err)
			}
			if err := rc.Close(); err != nil {
				t.Errorf("layer: %v", err)
			}
		}
		wantIdx, _ := idx.Digest()
		gotIdx, err := remote.Index(ref(t, host+"/binderbuild/multi:v1"))
		if err != nil {
			t.Fatalf("pull index: %v", err)
		}
		if d, _ := gotIdx.Digest(); d != wantIdx {
			t.Errorf("index digest = %s, want %s", d, wantIdx)
		}
		repos, err := remote.Catalog(t.Context(), ref(t, host+"/x:y").Context().Registry)
		if err != nil || strings.Join(repos, ",") != "binderbuild/multi,binderbuild/org-repo" {
			t.Errorf("Catalog = %q, %v; want binderbuild/multi,binderbuild/org-repo", repos, err)
		}
	}
	check(host)
	check(serve(t, dir)) // a restart
	if _, err := remote.Head(ref(t, host+"/binderbuild/org-repo:other")); !isStatus(err, http.StatusNotFound) {
		t.Errorf("Head of a missing tag: %v, want 404", err)
	}
}

func isStatus(err error, code int) bool {
	terr, ok := err.(*transport.Error)
	return ok && terr.StatusCode == code
}

// TestEmbeddedDelete deletes a tag and a manifest as `binderbuild gc` does.
func TestEmbeddedDelete(t *testing.T) {
	host := serve(t, t.TempDir())
	img, _ := random.Image(100, 1)
	for _, tag := range []string{"a", "b"} {
		if err := remote.Write(ref(t, host+"/r:"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Delete(ref(t, host+"/r:a")); err != nil {
		t.Fatalf("delete tag: %v", err)
	}
	if _, err := remote.Head(ref(t, host+"/r:b")); err != nil {
		t.Errorf("other tag gone with the first: %v", err)
	}
	d, _ := img.Digest()
	if err := remote.Delete(ref(t, host+"/r@"+d.String())); err != nil {
		t.Fatalf("delete manifest: %v", err)
	}
	for _, r := range []string{"/r:b", "/r@" + d.String()} {
		if _, err := remote.Head(ref(t, host+r)); !isStatus(err, http.StatusNotFound) {
			t.Errorf("Head %s after delete: %v, want 404", r, err)
		}
	}
	tags, err := remote.List(ref(t, host+"/r:b").Context())
	if err != nil || len(tags) != 0 {
		t.Errorf("List = %q, %v; want none", tags, err)
	}
}

// TestEmbeddedProtocol drives the raw API: the statuses and error codes of
// the distribution spec for what clients do wrong.
func TestEmbeddedProtocol(t *testing.T) {
	dir := t.TempDir()
	host := serve(t, dir)
	base := "http://" + host
	blob := []byte("hello blob")
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	do := func(method, path string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	code := func(resp *http.Response) string {
		var e struct{ Errors []struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if len(e.Errors) == 0 {
			return ""
		}
		return e.Errors[0].Code
	}

	if r := do("GET", "/v2/", nil); r.StatusCode != 200 || r.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("GET /v2/ = %d %q", r.StatusCode, r.Header.Get("Docker-Distribution-API-Version"))
	}
	if r := do("POST", "/v2/r/blobs/uploads/?digest="+digest, blob); r.StatusCode != 201 || r.Header.Get("Docker-Content-Digest") != digest {
		t.Errorf("monolithic upload = %d, want 201", r.StatusCode)
	}
	if r := do("GET", "/v2/r/blobs/"+digest, nil, "Range", "bytes=6-"); r.StatusCode != 206 {
		t.Errorf("ranged GET = %d, want 206", r.StatusCode)
	} else if b, _ := io.ReadAll(r.Body); string(b) != "blob" {
		t.Errorf("ranged GET body = %q, want blob", b)
	}
	if r := do("POST", "/v2/other/blobs/uploads/?mount="+digest+"&from=r", nil); r.StatusCode != 201 {
		t.Errorf("mount = %d, want 201", r.StatusCode)
	}

	start := do("POST", "/v2/r/blobs/uploads/", nil)
	loc := start.Header.Get("Location")
	if start.StatusCode != 202 || loc == "" {
		t.Fatalf("start upload = %d %q", start.StatusCode, loc)
	}
	if r := do("PATCH", loc, blob[:5], "Content-Range", "0-4"); r.StatusCode != 202 || r.Header.Get("Range") != "0-4" {
		t.Errorf("PATCH = %d range %q, want 202 0-4", r.StatusCode, r.Header.Get("Range"))
	}
	if r := do("PATCH", loc, blob[5:], "Content-Range", "3-9"); r.StatusCode != 416 {
		t.Errorf("PATCH at the wrong offset = %d, want 416", r.StatusCode)
	}
	wrong := "sha256:" + strings.Repeat("0", 64)
	if r := do("PUT", loc+"?digest="+wrong, blob[5:]); r.StatusCode != 400 || code(r) != "DIGEST_INVALID" {
		t.Errorf("PUT with a wrong digest = %d %s, want 400 DIGEST_INVALID", r.StatusCode, code(r))
	}
	if r := do("PATCH", loc, blob); r.StatusCode != 404 || code(r) != "BLOB_UPLOAD_UNKNOWN" {
		t.Errorf("PATCH after a failed PUT = %d %s, want 404 BLOB_UPLOAD_UNKNOWN", r.StatusCode, code(r))
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(entries) != 0 {
		t.Errorf("uploads left on disk: %d", len(entries))
	}

	manifest := []byte(`{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", ` +
		`"config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "` + wrong + `", "size": 2}, "layers": []}`)
	if r := do("PUT", "/v2/r/manifests/v1", manifest); r.StatusCode != 400 || code(r) != "MANIFEST_BLOB_UNKNOWN" {
		t.Errorf("manifest with a missing blob = %d %s, want 400 MANIFEST_BLOB_UNKNOWN", r.StatusCode, code(r))
	}
	manifest = bytes.Replace(manifest, []byte(wrong), []byte(digest), 1)
	if r := do("PUT", "/v2/r/manifests/"+wrong, manifest); r.StatusCode != 400 || code(r) != "DIGEST_INVALID" {
		t.Errorf("manifest under another digest = %d %s, want 400 DIGEST_INVALID", r.StatusCode, code(r))
	}
	if r := do("PUT", "/v2/r/manifests/v1", manifest); r.StatusCode != 201 {
		t.Errorf("PUT manifest = %d %s, want 201", r.StatusCode, code(r))
	}
	if r := do("HEAD", "/v2/r/manifests/v1", nil); r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("HEAD manifest = %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	for _, tc := range []struct{ path, code string }{
		{"/v2/../etc/manifests/x", "NAME_INVALID"},
		{"/v2/R/manifests/x", "NAME_INVALID"},
		{"/v2/r/manifests/-x", "TAG_INVALID"},
		{"/v2/r/blobs/md5:abc", "DIGEST_INVALID"},
		{"/v2/r/manifests/nope", "MANIFEST_UNKNOWN"},
		{"/v2/nope/tags/list", "NAME_UNKNOWN"},
		{"/v2/r/blobs/" + wrong, "BLOB_UNKNOWN"},
	} {
		req, _ := http.NewRequest("GET", base+tc.path, nil)
		req.URL.Opaque = tc.path // keep ".." as sent
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := code(resp); got != tc.code {
			t.Errorf("GET %s: %d %s, want %s", tc.path, resp.StatusCode, got, tc.code)
		}
		resp.Body.Close()
	}
	for _, tag := range []string{"v2", "v3"} {
		do("PUT", "/v2/r/manifests/"+tag, manifest)
	}
	r := do("GET", "/v2/r/tags/list?n=2", nil)
	var page struct{ Tags []string }
	_ = json.NewDecoder(r.Body).Decode(&page)
	if strings.Join(page.Tags, ",") != "v1,v2" || !strings.Contains(r.Header.Get("Link"), "last=v2") {
		t.Errorf("tags page 1 = %q, Link %q", page.Tags, r.Header.Get("Link"))
	}
	r = do("GET", "/v2/r/tags/list?n=2&last=v2", nil)
	_ = json.NewDecoder(r.Body).Decode(&page)
	if strings.Join(page.Tags, ",") != "v3" || r.Header.Get("Link") != "" {
		t.Errorf("tags page 2 = %q, Link %q", page.Tags, r.Header.Get("Link"))
	}
}

// TestEmbeddedNotWritable fails clearly on a folder it cannot write.
func TestEmbeddedNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := embedded.New(filepath.Join(file, "sub"), nil); err == nil {
		t.Error("New under a file succeeded")
	}
}
