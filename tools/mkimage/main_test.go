package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// TestPushAndTar builds the image once, pushes it to a real registry and
// writes the tarball, then checks both carry the same image: one layer with
// the binary, the CA bundle and the binderbuild user, run as uid 1000.
func TestPushAndTar(t *testing.T) {
	reg := testregistry.Start(t, testregistry.Options{})
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	ref := reg.Host() + "/binderbuild:test"
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-ca", ca, "-tar", tarPath, "-push", ref}, &out); err != nil {
		t.Fatalf("run: %v", err)
	}

	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := remote.Image(parsed, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	digest, _ := pushed.Digest()
	want := "wrote " + tarPath + " (binderbuild:dev, " + digest.String() + ")\npushed " + reg.Host() + "/binderbuild@" + digest.String() + "\n"
	if out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
	fromTar, err := tarball.ImageFromPath(tarPath, ptrTag(t, "binderbuild:dev"))
	if err != nil {
		t.Fatalf("read tarball: %v", err)
	}
	if d, _ := fromTar.Digest(); d != digest {
		t.Errorf("tarball image %s, pushed %s", d, digest)
	}

	cfg, err := pushed.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := v1.Config{
		Entrypoint:   []string{"/binderbuild"},
		Cmd:          []string{"serve"},
		Env:          []string{"HOME=/home/binderbuild"},
		User:         "1000:1000",
		ExposedPorts: map[string]struct{}{"8585/tcp": {}},
	}
	if !reflect.DeepEqual(cfg.Config, wantCfg) {
		t.Errorf("config = %+v, want %+v", cfg.Config, wantCfg)
	}
	files := layerFiles(t, pushed)
	if got := files["etc/ssl/certs/ca-certificates.crt"]; !strings.Contains(got, "test") {
		t.Errorf("CA bundle = %q, want the -ca file", got)
	}
	if got := files["etc/passwd"]; !strings.Contains(got, "binderbuild:x:1000:1000:") {
		t.Errorf("/etc/passwd = %q, want the binderbuild user", got)
	}
	if len(files["binderbuild"]) < 1<<20 {
		t.Errorf("/binderbuild has %d bytes, want the binary", len(files["binderbuild"]))
	}
}

func ptrTag(t *testing.T, s string) *name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return &tag
}

// layerFiles returns the contents of the regular files of the image's only
// layer.
func layerFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = string(data)
	}
}

func TestNothingToDo(t *testing.T) {
	err := run(t.Context(), nil, io.Discard)
	if err == nil || err.Error() != "nothing to do: give -tar, -push or both" {
		t.Errorf("run without flags: %v, want %q", err, "nothing to do: give -tar, -push or both")
	}
}
