package gc

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// testNow is the clock of every registry test; image ages are relative to
// it.
func testNow() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

const day = 24 * time.Hour

// layer returns a layer of exactly size bytes whose content depends on
// seed, so that equal seeds give the same (shared) blob.
func layer(t testing.TB, seed string, size int) v1.Layer {
	t.Helper()
	b := bytes.Repeat([]byte(seed+"."), size/(len(seed)+1)+1)[:size]
	return static.NewLayer(b, types.DockerLayer)
}

// build returns an image of layers created at created.
func build(t testing.TB, created time.Time, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.Architecture, cf.OS = "amd64", "linux"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// imageSize is the compressed size of img: config plus layers.
func imageSize(t testing.TB, img v1.Image) int64 {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// fixtureImage is one image of the fixture.
type fixtureImage struct {
	key    string // short name used by the tests
	repo   string // repository, after the registry host
	tags   []string
	img    v1.Image      // a single-platform image, or
	index  v1.ImageIndex // a multi-platform one
	digest string
	size   int64 // config + layers, each blob once
	unique int64 // bytes no other fixture image references
}

// fixture is the content of a test registry: images under the prefix
// "<host>/binder/r2d-" of known ages, sizes and shared layers, and two
// outside it.
type fixture struct {
	host   string
	prefix string
	images map[string]*fixtureImage
}

// ref returns the image's repository@digest.
func (f *fixture) ref(key string) string {
	im := f.images[key]
	return f.host + "/" + im.repo + "@" + im.digest
}

// underPrefix returns the fixture keys under the prefix.
func underPrefix() []string { return []string{"a1", "a2", "a3", "b1", "b2", "ci", "d1", "g1"} }

// fill pushes the fixture to host (through which every request goes).
//
//	alpha: a1 60d, a2 20d, a3 2d (tags a3, latest), all on a shared 1000 B base
//	beta:  b1 40d (20000 B, the largest), b2 30 minutes
//	ci-2drepos-xyz: ci 5d (a CI repository)
//	delta: d1 50d, an index of two platform images
//	gamma: g1 10d, shares a3's 4000 B layer
//	outside the prefix: binder/r2dx-out and other/r2d-x, 90d
func fill(t testing.TB, host string) *fixture {
	t.Helper()
	f := &fixture{host: host, prefix: host + "/binder/r2d-", images: make(map[string]*fixtureImage)}
	base := layer(t, "base", 1000)
	shared := layer(t, "shared", 4000)
	add := func(key, repo string, img v1.Image, tags ...string) {
		f.images[key] = &fixtureImage{key: key, repo: repo, tags: tags, img: img}
	}
	add("a1", "binder/r2d-alpha-aaaaaa", build(t, testNow().Add(-60*day), base, layer(t, "a1", 2000)), "a1")
	add("a2", "binder/r2d-alpha-aaaaaa", build(t, testNow().Add(-20*day), base, layer(t, "a2", 3000)), "a2")
	add("a3", "binder/r2d-alpha-aaaaaa", build(t, testNow().Add(-2*day), base, shared), "a3", "latest")
	add("b1", "binder/r2d-beta-bbbbbb", build(t, testNow().Add(-40*day), layer(t, "b1", 20000)), "b1")
	add("b2", "binder/r2d-beta-bbbbbb", build(t, testNow().Add(-30*time.Minute), layer(t, "b2", 5000)), "b2")
	add("ci", "binder/r2d-ci-2drepos-cccccc", build(t, testNow().Add(-5*day), layer(t, "ci", 1500)), "c1")
	add("g1", "binder/r2d-gamma-gggggg", build(t, testNow().Add(-10*day), shared, layer(t, "g1", 500)), "g1")
	add("out1", "binder/r2dx-out", build(t, testNow().Add(-90*day), layer(t, "out1", 100)), "o1")
	add("out2", "other/r2d-x", build(t, testNow().Add(-90*day), layer(t, "out2", 100)), "o2")

	amd := build(t, testNow().Add(-50*day), layer(t, "d-amd64", 3000))
	arm := build(t, testNow().Add(-50*day), layer(t, "d-arm64", 3500))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	f.images["d1"] = &fixtureImage{key: "d1", repo: "binder/r2d-delta-dddddd", tags: []string{"d1"}, index: idx,
		size: imageSize(t, amd) + imageSize(t, arm)}

	for _, im := range f.images {
		for _, tag := range im.tags {
			ref, err := name.ParseReference(host + "/" + im.repo + ":" + tag)
			if err != nil {
				t.Fatal(err)
			}
			var d v1.Hash
			if im.index != nil {
				err = remote.WriteIndex(ref, im.index, remote.WithContext(t.Context()))
				d, _ = im.index.Digest()
			} else {
				err = remote.Write(ref, im.img, remote.WithContext(t.Context()))
				d, _ = im.img.Digest()
				im.size = imageSize(t, im.img)
			}
			if err != nil {
				t.Fatalf("push %s: %v", ref, err)
			}
			im.digest = d.String()
		}
	}
	// Bytes only this image references (base is shared by the alpha
	// images, shared by a3 and g1).
	for _, im := range f.images {
		im.unique = im.size
	}
	f.images["a1"].unique -= 1000
	f.images["a2"].unique -= 1000
	f.images["a3"].unique -= 1000 + 4000
	f.images["g1"].unique -= 4000
	return f
}

// total is the size of the images under the prefix, shared blobs once.
func (f *fixture) total() int64 {
	var n int64
	for _, k := range underPrefix() {
		n += f.images[k].unique
	}
	return n + 1000 + 4000
}

// key returns the fixture key of repo@digest, or the reference itself.
func (f *fixture) key(repo, digest string) string {
	for k, im := range f.images {
		if f.host+"/"+im.repo == repo && im.digest == digest {
			return k
		}
	}
	return repo + "@" + digest
}

// keys returns the sorted fixture keys of candidates.
func (f *fixture) keys(cs []Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, f.key(c.Repository, c.Digest))
	}
	slices.Sort(out)
	return out
}

// resultKeys returns the sorted fixture keys of results.
func (f *fixture) resultKeys(rs []Result) []string {
	var cs []Candidate
	for _, r := range rs {
		cs = append(cs, r.Candidate)
	}
	return f.keys(cs)
}

// exists HEADs a reference ("repo@digest" or "repo:tag") in the registry:
// true when found, false on 404, a test failure otherwise.
func exists(t testing.TB, ref string) bool {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r, remote.WithContext(t.Context()))
	var terr *transport.Error
	switch {
	case err == nil:
		return true
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		return false
	}
	t.Fatalf("HEAD %s: %v", ref, err)
	return false
}

// startFilled starts a registry with deletes enabled and fills it.
func startFilled(t testing.TB) (*testregistry.Registry, *fixture) {
	t.Helper()
	reg := testregistry.Start(t, testregistry.Options{DeleteEnabled: true})
	return reg, fill(t, reg.Host())
}

// collector returns a Collector on the test clock with quick retries.
func collector(t testing.TB, cfg Config) *Collector {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = testNow
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakePods is a PodImages answering a fixed set.
type fakePods struct {
	RunningImagesFn func() (map[string]bool, error)
}

func (f fakePods) RunningImages(context.Context) (map[string]bool, error) {
	return f.RunningImagesFn()
}
