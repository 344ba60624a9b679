package gc

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// maxConfigSize bounds the image config blobs List reads.
const maxConfigSize = 16 << 20

// maxIndexDepth bounds nested indexes.
const maxIndexDepth = 3

// Image is one manifest under the prefix with every tag pointing at it.
// Deleting it by digest removes all those tags.
type Image struct {
	// Repository is the full repository name, registry host included
	// ("registry.example.com/binder/r2d-x-abc123").
	Repository string `json:"repository"`
	// Digest is the manifest digest ("sha256:…").
	Digest string `json:"digest"`
	// MediaType is the manifest's media type.
	MediaType string `json:"media_type"`
	// Tags are the tags pointing at Digest, sorted.
	Tags []string `json:"tags"`
	// Created is the config's creation time (for an index, the newest of
	// its images); zero when unknown (no image config), and then omitted
	// from JSON.
	Created time.Time `json:"created,omitzero"`
	// Size is the compressed size in bytes: config plus layers, each blob
	// once; for an index, of all its images together.
	Size int64 `json:"size"`
	// Children are the digests of an index's manifests.
	Children []string `json:"children,omitempty"`
	// Blobs maps every blob the image references to its size.
	Blobs map[string]int64 `json:"-"`
	// repo is Repository as List parsed it: its registry allows plain
	// HTTP only when the settings list the host as insecure. Deletions go
	// through it.
	repo name.Repository
}

// Ref returns "repository@digest".
func (i Image) Ref() string { return i.Repository + "@" + i.Digest }

// Inventory is everything under a prefix at one moment.
type Inventory struct {
	// Registry is the registry host ("registry.example.com").
	Registry string `json:"registry"`
	// Prefix is the normalised image prefix.
	Prefix string `json:"prefix"`
	// Images are sorted by repository, then creation time, then digest.
	Images []Image `json:"images"`
}

// TotalBytes is the compressed size of every image, each blob counted once
// however many images share it.
func (inv Inventory) TotalBytes() int64 {
	return unionSize(inv.Images)
}

// unionSize adds up the distinct blobs of images.
func unionSize(images []Image) int64 {
	seen := make(map[string]bool)
	var n int64
	for _, img := range images {
		for d, size := range img.Blobs {
			if !seen[d] {
				seen[d] = true
				n += size
			}
		}
	}
	return n
}

// List returns every tagged image in the repositories of s.ImagePrefix's
// registry whose full name starts with s.ImagePrefix. It reads the catalog
// (/v2/_catalog), each repository's tags, each manifest and each image
// config, with at most s.Workers repositories at a time, retrying
// transient failures. A tag or repository that disappears meanwhile is
// skipped; any other failure ends the listing with an error.
func (c *Collector) List(ctx context.Context, s Settings) (Inventory, error) {
	t, err := parsePrefix(s.ImagePrefix, s.InsecureHosts)
	if err != nil {
		return Inventory{}, err
	}
	puller, err := remote.NewPuller(c.options(ctx)...)
	if err != nil {
		return Inventory{}, fmt.Errorf("registry %s: %w", t.registry.RegistryStr(), err)
	}
	l := &lister{c: c, puller: puller, created: make(map[string]time.Time)}

	var catalog []string
	if _, err := c.retry(ctx, "catalog", func() (err error) {
		catalog, err = puller.Catalog(ctx, t.registry)
		return err
	}); err != nil {
		return Inventory{}, fmt.Errorf("list repositories of registry %s: %w", t.registry.RegistryStr(), err)
	}
	var repos []name.Repository
	for _, r := range catalog {
		if !strings.HasPrefix(r, t.path) {
			continue
		}
		repo, err := name.NewRepository(t.registry.RegistryStr()+"/"+r, name.Insecure)
		if err != nil {
			return Inventory{}, fmt.Errorf("registry %s: repository %q: %w", t.registry.RegistryStr(), r, err)
		}
		repo.Registry = t.registry
		repos = append(repos, repo)
	}
	c.log.InfoContext(ctx, "listing registry", "registry", t.registry.RegistryStr(), "prefix", t.prefix, "repositories", len(repos), "catalog", len(catalog))

	found := make([][]Image, len(repos))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.Workers, 1))
	for i, repo := range repos {
		g.Go(func() error {
			imgs, err := l.repository(gctx, repo)
			found[i] = imgs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Inventory{}, err
	}
	inv := Inventory{Registry: t.registry.RegistryStr(), Prefix: t.prefix}
	for _, imgs := range found {
		inv.Images = append(inv.Images, imgs...)
	}
	slices.SortFunc(inv.Images, func(a, b Image) int {
		return cmp.Or(strings.Compare(a.Repository, b.Repository), a.Created.Compare(b.Created), strings.Compare(a.Digest, b.Digest))
	})
	return inv, nil
}

// lister is the state of one List.
type lister struct {
	c      *Collector
	puller *remote.Puller
	// created caches creation times by config digest (one config is often
	// shared by copies of an image in several repositories).
	mu      sync.Mutex
	created map[string]time.Time
}

// repository lists the images of one repository.
func (l *lister) repository(ctx context.Context, repo name.Repository) ([]Image, error) {
	var tags []string
	_, err := l.c.retry(ctx, "tags of "+repo.Name(), func() (err error) {
		tags, err = l.puller.List(ctx, repo)
		return err
	})
	switch {
	case isNotFound(err):
		return nil, nil // deleted meanwhile, or no tag left
	case err != nil:
		return nil, fmt.Errorf("list tags of %s: %w", repo.Name(), err)
	}
	slices.Sort(tags)
	byDigest := make(map[string]*Image)
	var order []string
	for _, tag := range tags {
		desc, err := l.get(ctx, repo.Tag(tag))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d := desc.Digest.String()
		if img, ok := byDigest[d]; ok {
			img.Tags = append(img.Tags, tag)
			continue
		}
		img := &Image{Repository: repo.Name(), repo: repo, Digest: d, MediaType: string(desc.MediaType), Tags: []string{tag}, Blobs: make(map[string]int64)}
		if err := l.describe(ctx, repo, img, desc.MediaType, desc.Manifest, 0); err != nil {
			if isNotFound(err) {
				continue
			}
			return nil, err
		}
		for _, size := range img.Blobs {
			img.Size += size
		}
		byDigest[d] = img
		order = append(order, d)
	}
	imgs := make([]Image, 0, len(order))
	for _, d := range order {
		imgs = append(imgs, *byDigest[d])
	}
	return imgs, nil
}

// get fetches a manifest with retries.
func (l *lister) get(ctx context.Context, ref name.Reference) (*remote.Descriptor, error) {
	var desc *remote.Descriptor
	_, err := l.c.retry(ctx, "manifest "+ref.Name(), func() (err error) {
		desc, err = l.puller.Get(ctx, ref)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get manifest %s: %w", ref.Name(), err)
	}
	return desc, nil
}

// describe adds the blobs, children and creation time of the manifest raw
// (of media type mt) to img.
func (l *lister) describe(ctx context.Context, repo name.Repository, img *Image, mt types.MediaType, raw []byte, depth int) error {
	switch {
	case mt.IsIndex():
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("parse index %s@%s: %w", repo.Name(), img.Digest, err)
		}
		for _, m := range idx.Manifests {
			if !(m.MediaType.IsImage() || m.MediaType.IsIndex()) || depth >= maxIndexDepth {
				img.Blobs[m.Digest.String()] = m.Size
				continue
			}
			if depth == 0 {
				img.Children = append(img.Children, m.Digest.String())
			}
			desc, err := l.get(ctx, repo.Digest(m.Digest.String()))
			if err != nil {
				return err
			}
			if err := l.describe(ctx, repo, img, desc.MediaType, desc.Manifest, depth+1); err != nil {
				return err
			}
		}
		return nil
	case mt.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("parse manifest %s@%s: %w", repo.Name(), img.Digest, err)
		}
		img.Blobs[m.Config.Digest.String()] = m.Config.Size
		for _, layer := range m.Layers {
			img.Blobs[layer.Digest.String()] = layer.Size
		}
		if m.Config.MediaType.IsConfig() {
			created, err := l.configCreated(ctx, repo, m.Config.Digest)
			if err != nil {
				return err
			}
			if created.After(img.Created) {
				img.Created = created
			}
		}
		return nil
	default:
		// Schema 1 or an unknown artifact: listed, without size or age.
		return nil
	}
}

// configCreated returns the creation time of the config blob d.
func (l *lister) configCreated(ctx context.Context, repo name.Repository, d v1.Hash) (time.Time, error) {
	l.mu.Lock()
	created, ok := l.created[d.String()]
	l.mu.Unlock()
	if ok {
		return created, nil
	}
	ref := repo.Digest(d.String())
	var cfg *v1.ConfigFile
	_, err := l.c.retry(ctx, "config "+ref.Name(), func() error {
		layer, err := l.puller.Layer(ctx, ref)
		if err != nil {
			return err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, maxConfigSize))
		if err != nil {
			return err
		}
		cfg, err = v1.ParseConfigFile(bytes.NewReader(data))
		if err != nil {
			return &permanentError{err}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("get image config %s: %w", ref.Name(), err)
	}
	created = cfg.Created.Time
	l.mu.Lock()
	l.created[d.String()] = created
	l.mu.Unlock()
	return created, nil
}

// permanentError marks an error that a retry cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
