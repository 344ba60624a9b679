// Command mkimage builds binderbuild's container image without a base image,
// a registry pull or a Docker engine (`make image`): the static binary, the
// machine's CA bundle, passwd and group files with the binderbuild user
// (uid/gid 1000, the user the Helm chart runs as), its home and /tmp, in one
// layer. It writes a `docker load` tarball, pushes to a registry, or both.
// The Dockerfile builds an equivalent image for those who can pull bases.
//
//	go run ./tools/mkimage -tar bin/binderbuild-image.tar -tag binderbuild:dev
//	go run ./tools/mkimage -push registry.example.org/binderbuild:v1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/binderbuild/binderbuild/internal/goimage"
)

// servicePackage is the image's binary.
const servicePackage = "github.com/binderbuild/binderbuild/cmd/binderbuild"

// uid is the binderbuild user's uid and gid.
const uid = 1000

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	tarPath := fs.String("tar", "", "write a `docker load` tarball to this file")
	tag := fs.String("tag", "binderbuild:dev", "the image name inside the tarball")
	push := fs.String("push", "", "push the image to this reference (credentials from the Docker config)")
	caFile := fs.String("ca", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to install")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tarPath == "" && *push == "" {
		return errors.New("nothing to do: give -tar, -push or both")
	}
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("read CA bundle: %w", err)
	}
	img, err := Image(ctx, ca)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if *tarPath != "" {
		if err := writeTar(*tarPath, *tag, img); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%s, %s)\n", *tarPath, *tag, digest)
	}
	if *push != "" {
		ref, err := name.ParseReference(*push)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", ref.Context(), digest)
	}
	return nil
}

// Image builds binderbuild's image with ca as its CA bundle.
func Image(ctx context.Context, ca []byte) (v1.Image, error) {
	return goimage.Build(ctx, goimage.Options{
		Package: servicePackage,
		Files: []goimage.File{
			{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				"binderbuild:x:1000:1000:binderbuild:/home/binderbuild:/sbin/nologin\n")},
			{Path: "/etc/group", Data: []byte("root:x:0:\nnobody:x:65534:\nbinderbuild:x:1000:\n")},
			{Path: "/etc/ssl/certs/ca-certificates.crt", Data: ca},
			{Path: "/home/binderbuild/", Mode: 0o755, UID: uid, GID: uid},
			{Path: "/tmp/", Mode: 0o1777},
		},
		Cmd:          []string{"serve"},
		Env:          []string{"HOME=/home/binderbuild"},
		User:         fmt.Sprintf("%d:%d", uid, uid),
		ExposedPorts: []string{"8585/tcp"},
	})
}

func writeTar(path, tag string, img v1.Image) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, t, img)
}
