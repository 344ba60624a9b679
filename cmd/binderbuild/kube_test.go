package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKubeClient(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(file, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: builds}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name, env, file string
		wantNS, wantErr string
	}{
		{name: "KUBECONFIG", env: file, wantNS: "builds"},
		{name: "file given", file: file, wantNS: "builds"},
		{name: "KUBECONFIG list", env: missing + string(filepath.ListSeparator) + file, wantNS: "builds"},
		{name: "KUBECONFIG names no file", env: missing, wantErr: "names no cluster"},
		{name: "file given is missing", file: missing, wantErr: "missing"},
		{name: "nothing", wantErr: errNoCluster.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "KUBECONFIG" {
					return tc.env
				}
				return ""
			}
			_, ns, err := kubeClient(getenv, tc.file, false, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("kubeClient() error = %v, want one containing %q", err, tc.wantErr)
				}
				if tc.name == "nothing" && !errors.Is(err, errNoCluster) {
					t.Errorf("kubeClient() error = %v, want errNoCluster", err)
				}
				return
			}
			if err != nil || ns != tc.wantNS {
				t.Errorf("kubeClient() namespace, error = %q, %v; want %q, nil", ns, err, tc.wantNS)
			}
		})
	}
}
