package registry

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// TestKeychain: the docker config's credentials come first with or without
// Google's keychain, which leaves other registries anonymous (it answers
// for gcr.io and *.pkg.dev only, so nothing here asks Google).
func TestKeychain(t *testing.T) {
	dir := t.TempDir()
	config := `{"auths": {"quay.io": {"username": "robot", "password": "pw"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	for _, google := range []bool{false, true} {
		kc := Keychain(google)
		for reg, want := range map[string]authn.AuthConfig{
			"quay.io":        {Username: "robot", Password: "pw"},
			"127.0.0.1:5000": {},
		} {
			r, err := name.NewRegistry(reg)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := kc.Resolve(r)
			if err != nil {
				t.Fatalf("Keychain(%v).Resolve(%s): %v", google, reg, err)
			}
			got, err := auth.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if *got != want {
				t.Errorf("Keychain(%v).Resolve(%s) = %+v, want %+v", google, reg, *got, want)
			}
		}
	}
}
