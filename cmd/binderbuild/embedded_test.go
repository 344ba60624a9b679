package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild/registry/embedded"
)

// TestEmbeddedRegistryConfig reads the embedded registry's limits from
// BINDERBUILD_EMBEDDED_REGISTRY_*, sizes as Kubernetes quantities.
func TestEmbeddedRegistryConfig(t *testing.T) {
	env := testEnv{}
	cfg, err := loadConfig(env.lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := embedded.Config{MaxUploadSize: 16 << 30, UploadTTL: time.Hour, GCInterval: time.Hour, GCGrace: time.Hour,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if cfg.EmbeddedRegistry != want {
		t.Errorf("defaults = %+v, want %+v", cfg.EmbeddedRegistry, want)
	}
	for k, v := range map[string]string{
		"MAX_UPLOAD_SIZE": "1.5Gi", "UPLOAD_TTL": "10m", "GC_INTERVAL": "6h", "GC_GRACE": "30m",
		"READ_HEADER_TIMEOUT": "5s", "IDLE_TIMEOUT": "1m",
	} {
		env.set("BINDERBUILD_EMBEDDED_REGISTRY_"+k, v)
	}
	cfg, err = loadConfig(env.lookup)
	if err != nil {
		t.Fatal(err)
	}
	want = embedded.Config{MaxUploadSize: 3 << 29, UploadTTL: 10 * time.Minute, GCInterval: 6 * time.Hour, GCGrace: 30 * time.Minute,
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	if cfg.EmbeddedRegistry != want {
		t.Errorf("settings = %+v, want %+v", cfg.EmbeddedRegistry, want)
	}
}

func TestInvalidEmbeddedRegistryConfig(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"lots", `invalid BINDERBUILD_EMBEDDED_REGISTRY_MAX_UPLOAD_SIZE="lots": size "lots": want a Kubernetes quantity like 16Gi, 500M or 1048576`},
		{"16GB", `invalid BINDERBUILD_EMBEDDED_REGISTRY_MAX_UPLOAD_SIZE="16GB": size "16GB": sizes are Kubernetes quantities now; write 16G`},
		{"500m", `invalid BINDERBUILD_EMBEDDED_REGISTRY_MAX_UPLOAD_SIZE="500m": size "500m": m, u and n are thousandths`},
		{"-1Gi", `invalid BINDERBUILD_EMBEDDED_REGISTRY_MAX_UPLOAD_SIZE="-1Gi": size "-1Gi" is negative`},
	} {
		t.Run(tc.value, func(t *testing.T) {
			env := newEnv()
			env.set("BINDERBUILD_EMBEDDED_REGISTRY_MAX_UPLOAD_SIZE", tc.value)
			err := run(t.Context(), []string{"serve"}, env.lookup, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("serve with BINDERBUILD_EMBEDDED_REGISTRY_MAX_UPLOAD_SIZE=%q: %v, want one line containing %q", tc.value, err, tc.want)
			}
		})
	}
}
