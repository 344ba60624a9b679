// Package binderbuild holds the domain types that the server, the repo
// providers, the registry checker and the build executors share.
//
// It imports nothing from the project, so every other package may import it.
package binderbuild

import "errors"

// ErrRefNotFound is returned by a provider's Resolve when the ref does not
// exist (or the repository is private or missing). It is an outcome, not an
// internal error: the server answers it with "Could not resolve ref ...".
var ErrRefNotFound = errors.New("ref not found")

// Repo is a parsed but not yet resolved repository spec.
type Repo struct {
	// Provider is the URL prefix of the provider: "gh", "git", "gl",
	// "zenodo", ….
	Provider string
	// ProviderName is the human name used in metrics and launch events:
	// "GitHub", "Git", "GitLab", "Zenodo", ….
	ProviderName string
	// Spec is the raw, still percent-encoded spec with trailing "/" removed.
	Spec string
	// URL is the repository URL handed to repo2docker.
	URL string
	// Ref is the unresolved ref as the user gave it, unescaped; empty for
	// archives, whose specs name the version.
	Ref string
	// BuildSlug names the image and the build pod (see ImageName,
	// BuildName). Archives name the version in it, so they set it when
	// resolving.
	BuildSlug string
	// GitCredentials is the git credential helper input for private
	// repositories, empty when the provider has none. It is a secret.
	GitCredentials string
}

// Resolved is a repository at a resolved (immutable) ref.
type Resolved struct {
	Repo
	// ResolvedRef is the commit sha the ref pointed to.
	ResolvedRef string
	// ResolvedSpec is Spec with the ref replaced by ResolvedRef.
	ResolvedSpec string
	// RefURL is a human-facing URL of the repository at ResolvedRef.
	RefURL string
}

// BuildRequest asks an executor to build one image.
type BuildRequest struct {
	// Name is the build (pod) name from BuildName. Requests share a build
	// by Image, not by Name: names hash 24 bits of the slug, so executors
	// take another name when a build of another image holds this one.
	Name string
	// RepoURL and Ref are what repo2docker clones and checks out.
	RepoURL string
	Ref     string
	// Image is the full image name, with tag, to build and push: the
	// build's identity.
	Image string
	// GitCredentials is passed to the build as GIT_CREDENTIAL_ENV, for
	// repo2docker's credential helper, which git then asks only for the
	// origin (scheme://host[:port]) of RepoURL. Secret.
	GitCredentials string
	// Provider is the provider prefix, for metrics and logs.
	Provider string
	// ProviderName ("GitHub", "Git", "GitLab") and Spec (as requested,
	// still percent-encoded) describe the build in metrics, events and logs.
	ProviderName string
	Spec         string
	// Owner is who asked for the build (the user, else the client
	// address), for the limit on builds one owner starts; "" is no one.
	Owner string
	// BuildImage, when set, replaces the executor's configured build image
	// for this build: canary builds of a candidate repo2docker image
	// (server's canary route, admin token only). Requests with different
	// build images must have different Names and Images.
	BuildImage string
}
