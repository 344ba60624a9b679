package embedded_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/binderbuild/binderbuild/registry/embedded"
)

// start serves a registry on dir with cfg through Serve (so Run runs too)
// on a loopback port, until the test ends.
func start(t *testing.T, dir string, cfg embedded.Config) (string, *embedded.Registry) {
	t.Helper()
	reg, err := embedded.Open(dir, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), reg
}

// eventually fails the test unless cond holds within 20 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
	}
}

// blobBytes is the size of every blob stored under dir.
func blobBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) { // collected meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// imageBytes is the size of img's manifest, config and layers.
func imageBytes(t *testing.T, imgs ...v1.Image) int64 {
	t.Helper()
	seen := map[v1.Hash]bool{}
	var n int64
	for _, img := range imgs {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := img.RawManifest()
		n += int64(len(raw))
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				n += d.Size
			}
		}
	}
	return n
}

func mustImage(t *testing.T, size int64, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(size, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestCollect deletes exactly the blobs no manifest of any repository
// references, online after the manifest deletes: a deleted image's own
// layers, config and manifest go; layers it shares with a kept image in
// another repository stay; kept images and a kept index still pull whole.
func TestCollect(t *testing.T) {
	dir := t.TempDir()
	host, reg := start(t, dir, embedded.Config{GCGrace: time.Nanosecond, GCInterval: time.Hour})
	base := mustImage(t, 4096, 2)
	extra := mustImage(t, 2048, 1)
	extraLayers, _ := extra.Layers()
	child, err := mutate.AppendLayers(base, extraLayers...) // shares base's layers
	if err != nil {
		t.Fatal(err)
	}
	other := mustImage(t, 1024, 1)
	for r, img := range map[string]v1.Image{"a/base:1": base, "b/child:1": child, "a/other:1": other} {
		if err := remote.Write(ref(t, host+"/"+r), img); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := random.Index(512, 1, 2) // kept: its platform images are kept with it
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, host+"/c/multi:1"), idx); err != nil {
		t.Fatal(err)
	}
	idxRaw, _ := idx.RawManifest()
	idxManifest, _ := idx.IndexManifest()
	idxImages := []v1.Image{}
	for _, d := range idxManifest.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		idxImages = append(idxImages, img)
	}
	idxBytes := imageBytes(t, idxImages...) + int64(len(idxRaw))
	keptBytes := imageBytes(t, child) + idxBytes
	before := blobBytes(t, dir)
	if want := imageBytes(t, base, child, other) + idxBytes; before != want {
		t.Fatalf("blobs before = %d bytes, want %d", before, want)
	}

	if c, err := reg.Collect(); err != nil || c != (embedded.Collection{}) {
		t.Fatalf("Collect with nothing deleted = %+v, %v; want nothing", c, err)
	}
	for _, r := range []string{"/a/base@" + digestOf(t, base), "/a/other@" + digestOf(t, other)} {
		if err := remote.Delete(ref(t, host+r)); err != nil {
			t.Fatalf("delete %s: %v", r, err)
		}
	}
	eventually(t, "the online collection after the deletes", func() bool {
		return blobBytes(t, dir) == keptBytes
	})
	t.Logf("blobs on disk: %d bytes before, %d after", before, blobBytes(t, dir))

	got, err := remote.Image(ref(t, host+"/b/child:1"))
	if err != nil {
		t.Fatalf("pull kept image: %v", err)
	}
	layers, _ := got.Layers()
	gotIdx, err := remote.Index(ref(t, host+"/c/multi:1"))
	if err != nil {
		t.Fatalf("pull kept index: %v", err)
	}
	for _, d := range idxManifest.Manifests {
		img, err := gotIdx.Image(d.Digest)
		if err != nil {
			t.Fatalf("kept index's image: %v", err)
		}
		l, _ := img.Layers()
		layers = append(layers, l...)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("kept layer: %v", err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil { // verifies the digest
			t.Errorf("kept layer: %v", err)
		}
	}
	cfg, _ := base.ConfigName()
	if code := headStatus(t, "http://"+host+"/v2/a/base/blobs/"+cfg.String()); code != http.StatusNotFound {
		t.Errorf("HEAD of the deleted image's config = %d, want 404", code)
	}
}

func headStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
