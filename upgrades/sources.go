package upgrades

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gopkg.in/yaml.v3"
)

// maxIndexBytes bounds a Helm repository's index.yaml (JupyterHub's, with
// every dev release since 2017, is about 5 MB).
const maxIndexBytes = 64 << 20

// Sources lists versions from image registries and Helm repositories.
type Sources struct {
	// Keychain supplies registry credentials. Default
	// authn.DefaultKeychain (the docker config, as the service's).
	Keychain authn.Keychain
	// InsecureHosts are registry hosts reached over plain HTTP.
	InsecureHosts []string
	// HTTP fetches Helm repository indexes. Default http.DefaultClient.
	HTTP *http.Client
	// Transport carries registry requests. Default remote.DefaultTransport.
	Transport http.RoundTripper
}

// Release is an available version and, for charts, its appVersion.
type Release struct {
	Tag        string
	AppVersion string
}

// releases lists the dependency's tags (and, from a Helm index, their
// appVersions).
func (s Sources) releases(ctx context.Context, d Dependency) ([]Release, error) {
	switch {
	case strings.HasPrefix(d.Source, "oci://"):
		tags, err := s.tags(ctx, strings.TrimSuffix(strings.TrimPrefix(d.Source, "oci://"), "/")+"/"+d.Chart)
		// Helm stores "+" of versions as "_" in OCI tags.
		for i := range tags {
			tags[i] = strings.ReplaceAll(tags[i], "_", "+")
		}
		return asReleases(tags), err
	case isHelmSource(d.Source):
		return s.index(ctx, d.Source, d.Chart)
	}
	tags, err := s.tags(ctx, d.Source)
	return asReleases(tags), err
}

func asReleases(tags []string) []Release {
	out := make([]Release, len(tags))
	for i, t := range tags {
		out[i] = Release{Tag: t}
	}
	return out
}

// repository parses an image repository, as insecure when its host is
// listed.
func (s Sources) repository(repo string) (name.Repository, error) {
	r, err := name.NewRepository(repo)
	if err != nil {
		return r, fmt.Errorf("image repository %q: %w", repo, err)
	}
	for _, h := range s.InsecureHosts {
		if strings.EqualFold(strings.TrimSpace(h), r.RegistryStr()) {
			return name.NewRepository(repo, name.Insecure)
		}
	}
	return r, nil
}

func (s Sources) options(ctx context.Context) []remote.Option {
	kc := s.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithUserAgent("binderbuild-upgrades")}
	if s.Transport != nil {
		opts = append(opts, remote.WithTransport(s.Transport))
	}
	return opts
}

// tags lists an image repository's tags.
func (s Sources) tags(ctx context.Context, repo string) ([]string, error) {
	r, err := s.repository(repo)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(r, s.options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return tags, nil
}

// ociAppVersion reads a chart's appVersion from its OCI config blob.
func (s Sources) ociAppVersion(ctx context.Context, d Dependency, version string) (string, error) {
	repo, err := s.repository(strings.TrimSuffix(strings.TrimPrefix(d.Source, "oci://"), "/") + "/" + d.Chart)
	if err != nil {
		return "", err
	}
	img, err := remote.Image(repo.Tag(strings.ReplaceAll(version, "+", "_")), s.options(ctx)...)
	if err != nil {
		return "", fmt.Errorf("chart %s:%s: %w", repo, version, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return "", fmt.Errorf("chart %s:%s config: %w", repo, version, err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return "", fmt.Errorf("chart %s:%s config: %w", repo, version, err)
	}
	return meta.AppVersion, nil
}

// helmIndex is the part of a Helm repository's index.yaml read here.
type helmIndex struct {
	Entries map[string][]struct {
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	} `yaml:"entries"`
}

// index lists the versions of chart in the Helm repository at repoURL.
func (s Sources) index(ctx context.Context, repoURL, chart string) ([]Release, error) {
	u := strings.TrimSuffix(repoURL, "/") + "/index.yaml"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("helm repository %s: %w", repoURL, err)
	}
	client := s.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("helm repository: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("helm repository: GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("helm repository: GET %s: %w", u, err)
	}
	if len(data) > maxIndexBytes {
		return nil, fmt.Errorf("helm repository: %s is larger than %d MiB", u, maxIndexBytes>>20)
	}
	var idx helmIndex
	if err := yaml.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("helm repository: %s is not a Helm index: %w", u, err)
	}
	entries, ok := idx.Entries[chart]
	if !ok {
		return nil, fmt.Errorf("helm repository: %s has no chart %q", u, chart)
	}
	out := make([]Release, 0, len(entries))
	for _, e := range entries {
		out = append(out, Release{Tag: e.Version, AppVersion: e.AppVersion})
	}
	return out, nil
}

// appVersion returns the appVersion of tag among rels, reading it from the
// OCI registry for OCI charts.
func (s Sources) appVersion(ctx context.Context, d Dependency, rels []Release, tag string) (string, error) {
	if strings.HasPrefix(d.Source, "oci://") {
		return s.ociAppVersion(ctx, d, tag)
	}
	for _, r := range rels {
		if r.Tag == tag {
			return r.AppVersion, nil
		}
	}
	return "", errors.New("not listed")
}
