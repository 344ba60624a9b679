package upgrades

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultConfigFile is the configuration file read at the root of the
// deployment repository unless another is named.
const DefaultConfigFile = "binderbuild-upgrades.yaml"

// DefaultCanary is the repository canary builds use when the configuration
// names none: small, public, and built by every repo2docker release.
const DefaultCanary = "https://github.com/binder-examples/requirements"

// Config is a deployment repository's binderbuild-upgrades.yaml.
type Config struct {
	// Repository is the GitHub "owner/name" that receives the pull requests.
	Repository string `yaml:"repository"`
	// Base is the branch pull requests target. Default: the repository's
	// default branch.
	Base string `yaml:"base"`
	// Dependencies are bumped independently, one pull request each.
	Dependencies []Dependency `yaml:"dependencies"`
	// Canaries are git repository URLs that --verify builds with the
	// current and the candidate build image; "URL@ref" names a ref (default
	// HEAD). Default DefaultCanary.
	Canaries []string `yaml:"canaries"`
}

// Dependency is one version in one file.
type Dependency struct {
	// Name names the dependency in branches, titles and messages.
	Name string `yaml:"name"`
	// File is the YAML file, relative to the repository root.
	File string `yaml:"file"`
	// Path is the dotted path of the value: an image reference whose tag is
	// bumped, or a bare tag. Exclusive with Chart.
	Path string `yaml:"path"`
	// Chart names a Chart.yaml dependency whose version is bumped.
	Chart string `yaml:"chart"`
	// Source is where versions are listed: an image repository
	// ("quay.io/jupyterhub/repo2docker"), a Helm repository URL (http(s),
	// its index.yaml) or an OCI chart repository ("oci://host/path").
	Source string `yaml:"source"`
	// Tags, when set, is a regular expression tags must match.
	Tags string `yaml:"tags"`
	// Prerelease allows pre-releases and dev builds. Default false.
	Prerelease bool `yaml:"prerelease"`
	// GitHub is the source code's "owner/name" on GitHub, for the compare
	// link and the merged pull requests in the pull request body.
	GitHub string `yaml:"github"`
	// TagPrefix is prepended to a version to name its git tag ("v").
	TagPrefix string `yaml:"tag_prefix"`
	// Changelog is a URL linked from the pull request body.
	Changelog string `yaml:"changelog"`
	// Labels, Reviewers and TeamReviewers are set on new pull requests.
	Labels        []string `yaml:"labels"`
	Reviewers     []string `yaml:"reviewers"`
	TeamReviewers []string `yaml:"team_reviewers"`
	// Verify marks the build image: with --verify, candidates are tried on
	// the canaries before the pull request is proposed.
	Verify bool `yaml:"verify"`

	tags *regexp.Regexp
}

// Branch is the dependency's pull request branch.
func (d Dependency) Branch() string { return "binderbuild-upgrades/" + d.Name }

// isChart reports whether the dependency is a Helm chart.
func (d Dependency) isChart() bool { return d.Chart != "" }

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	repoPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$`)
)

// ParseConfig reads and checks a configuration file.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if len(c.Canaries) == 0 {
		c.Canaries = []string{DefaultCanary}
	}
	return &c, nil
}

func (c *Config) validate() error {
	if !repoPattern.MatchString(c.Repository) {
		return fmt.Errorf("repository %q: want owner/name", c.Repository)
	}
	if len(c.Dependencies) == 0 {
		return errors.New("no dependencies")
	}
	seen := map[string]bool{}
	var errs []error
	for i := range c.Dependencies {
		d := &c.Dependencies[i]
		if err := d.validate(); err != nil {
			errs = append(errs, fmt.Errorf("dependency %d (%s): %w", i+1, d.Name, err))
		}
		if seen[d.Name] {
			errs = append(errs, fmt.Errorf("dependency %q named twice", d.Name))
		}
		seen[d.Name] = true
	}
	for _, u := range c.Canaries {
		if p, err := url.Parse(strings.SplitN(u, "@", 2)[0]); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			errs = append(errs, fmt.Errorf("canary %q: want an http(s) git URL, optionally @ref", u))
		}
	}
	return errors.Join(errs...)
}

func (d *Dependency) validate() error {
	switch {
	case !namePattern.MatchString(d.Name):
		return fmt.Errorf("name %q: want letters, digits, '.', '_' or '-'", d.Name)
	case d.File == "" || path.IsAbs(d.File) || strings.HasPrefix(path.Clean(d.File), ".."):
		return fmt.Errorf("file %q: want a path inside the repository", d.File)
	case (d.Path == "") == (d.Chart == ""):
		return errors.New("want exactly one of path and chart")
	case d.Source == "":
		return errors.New("no source")
	case d.GitHub != "" && !repoPattern.MatchString(d.GitHub):
		return fmt.Errorf("github %q: want owner/name", d.GitHub)
	case d.Verify && d.isChart():
		return errors.New("verify applies to a build image, not a chart")
	}
	if d.isChart() != isHelmSource(d.Source) {
		return fmt.Errorf("source %q: a chart needs a Helm repository (https://… or oci://…), an image an image repository", d.Source)
	}
	if d.Tags != "" {
		re, err := regexp.Compile(d.Tags)
		if err != nil {
			return fmt.Errorf("tags: %w", err)
		}
		d.tags = re
	}
	return nil
}

// isHelmSource reports whether source is a Helm repository rather than an
// image repository.
func isHelmSource(source string) bool {
	return strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "oci://")
}
