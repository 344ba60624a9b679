package registry

import (
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
)

// Keychain returns the credentials of registry checks: the docker config
// (authn.DefaultKeychain, the file the build pods push with) first, then,
// when withGoogle is set, Google's keychain, which authenticates gcr.io and
// *-docker.pkg.dev requests with the service-account key named by
// GOOGLE_APPLICATION_CREDENTIALS (binderhub-service's
// extraCredentials.googleServiceAccountKey). Other registries get no
// Google credentials.
func Keychain(withGoogle bool) authn.Keychain {
	if !withGoogle {
		return authn.DefaultKeychain
	}
	return authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain)
}
