package goimage_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/binderbuild/binderbuild/internal/goimage"
)

type entry struct {
	typ      byte
	mode     int64
	uid, gid int
}

func TestBuild(t *testing.T) {
	img, err := goimage.Build(t.Context(), goimage.Options{
		Package: "./testdata/hello",
		Files: []goimage.File{
			{Path: "/etc/passwd", Data: []byte("app:x:1000:1000::/home/app:/sbin/nologin\n")},
			{Path: "/home/app/", UID: 1000, GID: 1000},
			{Path: "/tmp/", Mode: 0o1777},
		},
		Cmd:          []string{"serve"},
		Env:          []string{"HOME=/home/app"},
		User:         "1000:1000",
		ExposedPorts: []string{"8585/tcp"},
	})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Entrypoint:   []string{"/hello"},
		Cmd:          []string{"serve"},
		Env:          []string{"HOME=/home/app"},
		User:         "1000:1000",
		ExposedPorts: map[string]struct{}{"8585/tcp": {}},
	}
	if !reflect.DeepEqual(cfg.Config, want) {
		t.Errorf("config = %+v, want %+v", cfg.Config, want)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	bin := filepath.Join(t.TempDir(), "hello")
	got := readLayer(t, layers[0], bin)
	wantEntries := map[string]entry{
		"hello":      {tar.TypeReg, 0o755, 0, 0},
		"etc/":       {tar.TypeDir, 0o755, 0, 0},
		"etc/passwd": {tar.TypeReg, 0o644, 0, 0},
		"home/":      {tar.TypeDir, 0o755, 0, 0},
		"home/app/":  {tar.TypeDir, 0o755, 1000, 1000},
		"tmp/":       {tar.TypeDir, 0o1777, 0, 0},
	}
	if !reflect.DeepEqual(got, wantEntries) {
		t.Errorf("layer entries = %v, want %v", got, wantEntries)
	}
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "hello from goimage\n" {
		t.Errorf("the image's binary printed %q (%v), want %q", out, err, "hello from goimage\n")
	}
}

// readLayer returns the layer's entries and writes its /hello to bin.
func readLayer(t *testing.T, l v1.Layer, bin string) map[string]entry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = entry{h.Typeflag, h.Mode, h.Uid, h.Gid}
		if h.Name == "hello" {
			data, _ := io.ReadAll(tr)
			if err := os.WriteFile(bin, data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestBuildFailure(t *testing.T) {
	_, err := goimage.Build(t.Context(), goimage.Options{Package: "./testdata/missing"})
	if err == nil {
		t.Fatal("Build of a missing package succeeded")
	}
	_, err = goimage.Build(t.Context(), goimage.Options{Package: "./testdata/hello", Files: []goimage.File{{Path: "etc/passwd"}}})
	if err == nil || err.Error() != `image path "etc/passwd" is not absolute` {
		t.Errorf("Build with a relative path: error %v, want %q", err, `image path "etc/passwd" is not absolute`)
	}
}
