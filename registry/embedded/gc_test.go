package embedded_test

import (
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/binderbuild/binderbuild/registry/embedded"
	"github.com/binderbuild/binderbuild/registry/gc"
)

// TestBinderbuildGCFreesDisk runs `binderbuild gc`'s collection (keep the
// newest image of each repository) against the embedded registry as
// single-machine mode serves it: the registry's own collection, started by
// the manifest deletes, then frees on disk exactly the deleted images'
// manifests plus the bytes the gc report says are freed.
func TestBinderbuildGCFreesDisk(t *testing.T) {
	dir := t.TempDir()
	host, _ := start(t, dir, embedded.Config{GCGrace: time.Nanosecond})
	var kept, dropped []v1.Image
	for i, repo := range []string{"org-a-1f2e3d", "org-b-4c5b6a", "org-c-7d8e9f"} {
		for age, tag := range []string{"new", "old"} {
			img, err := mutate.CreatedAt(mustImage(t, 256<<10, 2), v1.Time{Time: time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Add(-time.Duration(age) * 24 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref(t, host+"/binderbuild/"+repo+":"+tag), img); err != nil {
				t.Fatal(err)
			}
			if tag == "new" {
				kept = append(kept, img)
			} else {
				dropped = append(dropped, img)
			}
		}
	}
	before := blobBytes(t, dir)
	if want := imageBytes(t, append(kept, dropped...)...); before != want {
		t.Fatalf("blobs before = %d bytes, want %d", before, want)
	}

	c, err := gc.New(gc.Config{Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Run(t.Context(), gc.Settings{ImagePrefix: host + "/binderbuild/", Keep: 1, Delete: true})
	if err != nil {
		t.Fatalf("gc: %v", err)
	}
	if rep.Deleted != len(dropped) || rep.Failed != 0 {
		t.Fatalf("gc deleted %d images, %d failed; want %d, 0", rep.Deleted, rep.Failed, len(dropped))
	}
	want := imageBytes(t, kept...)
	eventually(t, "the registry's collection after gc", func() bool { return blobBytes(t, dir) == want })

	var manifests int64
	for _, img := range dropped {
		raw, _ := img.RawManifest()
		manifests += int64(len(raw))
	}
	freed := before - blobBytes(t, dir)
	if freed != rep.FreedBytes+manifests {
		t.Errorf("freed on disk %d bytes, want the report's %d + %d of manifests", freed, rep.FreedBytes, manifests)
	}
	t.Logf("blobs on disk: %d bytes before gc, %d after: %d freed (report: %d of layers and configs)", before, before-freed, freed, rep.FreedBytes)
}
