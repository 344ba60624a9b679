// Package goimage builds container images from Go main packages without a
// base image, a registry pull or a Docker engine, the way ko does: the
// static binary and a few files the caller adds form the only layer, and the
// image config names the binary as entrypoint.
package goimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is a file or directory of the image's layer.
type File struct {
	// Path is absolute inside the image, e.g. "/etc/passwd".
	Path string
	// Data is the file's content; a Path ending in "/" is a directory and
	// has none.
	Data []byte
	// Mode is the permission bits; default 0o644 for files, 0o755 for
	// directories.
	Mode int64
	// UID and GID own the entry; default root.
	UID, GID int
}

// Options describe an image. Package is required.
type Options struct {
	// Package is the main package to build, as `go build` takes it (an import
	// path or a ./relative directory of Dir's module).
	Package string
	// Dir is the working directory of `go build`; default the current one.
	Dir string
	// Ldflags are passed to the linker; default "-s -w".
	Ldflags string
	// Binary is the binary's path inside the image; default
	// "/<last element of Package>".
	Binary string
	// Files are added to the layer besides the binary.
	Files []File
	// Cmd, Env, User and WorkingDir become the image config's fields
	// (User as "uid:gid"); ExposedPorts entries look like "8585/tcp".
	Cmd          []string
	Env          []string
	User         string
	WorkingDir   string
	ExposedPorts []string
}

// Build compiles opts.Package statically (CGO_ENABLED=0) for linux on the
// host's architecture and returns a one-layer image whose entrypoint is the
// binary. The layer's entries carry no timestamps, so equal inputs give equal
// digests.
func Build(ctx context.Context, opts Options) (v1.Image, error) {
	bin, err := compile(ctx, opts)
	if err != nil {
		return nil, err
	}
	binPath := opts.Binary
	if binPath == "" {
		binPath = "/" + filepath.Base(strings.TrimSuffix(opts.Package, "/"))
	}
	files := append([]File{{Path: binPath, Data: bin, Mode: 0o755}}, opts.Files...)
	return assemble(files, []string{binPath}, opts)
}

// FromFiles returns a one-layer image of opts.Files alone, with no
// entrypoint (a pod's command or args name the program); Package, Dir,
// Ldflags and Binary are unused.
func FromFiles(opts Options) (v1.Image, error) {
	return assemble(opts.Files, nil, opts)
}

// assemble returns the image of files with entrypoint and opts' config.
func assemble(files []File, entrypoint []string, opts Options) (v1.Image, error) {
	layerTar, err := tarFiles(files)
	if err != nil {
		return nil, err
	}
	// Compress once: the digest, a tarball and a push each need the result.
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Entrypoint = entrypoint
	cfg.Config.Cmd = opts.Cmd
	cfg.Config.Env = opts.Env
	cfg.Config.User = opts.User
	cfg.Config.WorkingDir = opts.WorkingDir
	if len(opts.ExposedPorts) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range opts.ExposedPorts {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cfg)
}

// compile builds the package into a temporary file and returns its bytes.
func compile(ctx context.Context, opts Options) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "goimage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ldflags := opts.Ldflags
	if ldflags == "" {
		ldflags = "-s -w"
	}
	out := filepath.Join(tmp, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, opts.Package)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", opts.Package, err, msg)
	}
	return os.ReadFile(out)
}

// tarFiles writes files (absolute paths) as a tar stream, creating missing
// parent directories (root-owned, 0o755) before their first entry.
func tarFiles(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, f := range files {
		if !filepath.IsAbs(f.Path) {
			return nil, fmt.Errorf("image path %q is not absolute", f.Path)
		}
		if err := writeParents(tw, seen, f.Path); err != nil {
			return nil, err
		}
		if err := writeEntry(tw, seen, f); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeParents(tw *tar.Writer, seen map[string]bool, path string) error {
	dir := filepath.Dir(strings.TrimSuffix(path, "/"))
	if dir == "/" || seen[dir] {
		return nil
	}
	if err := writeParents(tw, seen, dir); err != nil {
		return err
	}
	return writeEntry(tw, seen, File{Path: dir + "/"})
}

func writeEntry(tw *tar.Writer, seen map[string]bool, f File) error {
	name := strings.TrimPrefix(filepath.Clean(f.Path), "/")
	hdr := &tar.Header{Name: name, Mode: f.Mode, Uid: f.UID, Gid: f.GID, Typeflag: tar.TypeReg, Size: int64(len(f.Data))}
	if strings.HasSuffix(f.Path, "/") {
		hdr.Typeflag, hdr.Name, hdr.Size = tar.TypeDir, name+"/", 0
		if hdr.Mode == 0 {
			hdr.Mode = 0o755
		}
	} else if hdr.Mode == 0 {
		hdr.Mode = 0o644
	}
	seen["/"+name] = true
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(f.Data)
	return err
}
