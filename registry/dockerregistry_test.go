package registry

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// TestDockerRegistryAuth runs the checker against Debian's docker-registry
// with htpasswd auth, with credentials from a docker config.json found
// through $DOCKER_CONFIG by the default keychain. Not parallel: it sets
// DOCKER_CONFIG.
func TestDockerRegistryAuth(t *testing.T) {
	const user, password = "binder", "s3cret-pw"
	reg := testregistry.Start(t, testregistry.Options{Users: map[string]string{user: password}})
	prefix := reg.Host() + "/binder/r2d-"
	present := prefix + "present-abc123:0123abcd"
	push(t, present, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: password})))

	tests := []struct {
		name      string
		config    string // config.json; "" = no file
		image     string
		want      bool
		wantUnath bool
	}{
		{"correct credentials, found", dockerConfig(reg.Host(), user, password), present, true, false},
		{"correct credentials, not found", dockerConfig(reg.Host(), user, password), prefix + "absent-abc123:0123abcd", false, false},
		{"wrong password", dockerConfig(reg.Host(), user, "wrong-pw"), present, false, true},
		{"credentials for another registry", dockerConfig("other.example.com", user, password), present, false, true},
		{"empty config", `{}`, present, false, true},
		{"no config file", "", present, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.config != "" {
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("DOCKER_CONFIG", dir)
			var logs bytes.Buffer
			c, err := NewChecker(Config{ImagePrefix: prefix}, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Exists(t.Context(), tc.image)
			if got != tc.want || errors.Is(err, ErrUnauthorized) != tc.wantUnath || (err != nil) != tc.wantUnath {
				t.Errorf("Exists(%q) = %v, %v, want %v, unauthorized %v", tc.image, got, err, tc.want, tc.wantUnath)
			}
			health := c.Check(t.Context())
			if (health != nil) != tc.wantUnath || errors.Is(health, ErrUnauthorized) != tc.wantUnath {
				t.Errorf("Check() = %v, want unhealthy %v", health, tc.wantUnath)
			}
			// Secrets appear in neither errors nor logs.
			for _, secret := range []string{password, "wrong-pw", base64.StdEncoding.EncodeToString([]byte(user + ":" + password))} {
				for what, text := range map[string]string{"Exists error": fmt.Sprint(err), "Check error": fmt.Sprint(health), "logs": logs.String()} {
					if strings.Contains(text, secret) {
						t.Errorf("%s %q contains a secret", what, text)
					}
				}
			}
		})
	}
}

// dockerConfig returns a docker config.json with credentials for host.
func dockerConfig(host, user, password string) string {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	return fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth)
}
