package upgrades

import (
	"os"
	"strings"
	"testing"
)

// TestEditChangesOnlyTheVersion edits a file with comments, an anchor, an
// alias, quoting and flow style: the diff is one line, the rest of the bytes
// are untouched.
func TestEditChangesOnlyTheVersion(t *testing.T) {
	data, err := os.ReadFile("testdata/prod.values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, value, wantLine string
	}{
		{"double-quoted image", "binderhub-service.config.KubernetesBuildExecutor.build_image", "quay.io/jupyterhub/repo2docker:2024.08.0",
			`      build_image: "quay.io/jupyterhub/repo2docker:2024.08.0"   # pinned on purpose`},
		{"plain scalar in a flow mapping", "binderhub-service.dockerApi.image.tag", "27.4.0-dind",
			`    image: {name: docker.io/library/docker, tag: 27.4.0-dind}  # flow style`},
		{"single-quoted", "binderhub-service.config.BinderHub.image_prefix", "registry.example.org/binder/r3d-",
			`      image_prefix: 'registry.example.org/binder/r3d-'`},
		{"through an alias", "binderhub-service.dockerApi.resources.limits.memory", "8Gi",
			`x-common: &resources {requests: {cpu: "1", memory: 2Gi}, limits: {memory: 8Gi}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, err := parseYAML(data)
			if err != nil {
				t.Fatal(err)
			}
			n, ok := lookup(root, tc.path)
			if !ok {
				t.Fatalf("lookup(%q) found nothing", tc.path)
			}
			sc, err := locate(data, n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := replace(data, sc, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			before, after := strings.Split(string(data), "\n"), strings.Split(string(got), "\n")
			if len(before) != len(after) {
				t.Fatalf("line count %d, want %d", len(after), len(before))
			}
			changed := 0
			for i := range before {
				if before[i] != after[i] {
					changed++
					if after[i] != tc.wantLine {
						t.Errorf("line %d = %q, want %q", i+1, after[i], tc.wantLine)
					}
				}
			}
			if changed != 1 {
				t.Errorf("%d lines changed, want 1", changed)
			}
		})
	}
}

func TestEditRefusals(t *testing.T) {
	tests := []struct{ name, yaml, path, want string }{
		{"missing path", "a:\n  b: 1\n", "a.c", ""},
		{"block scalar", "a: |\n  1.0.0\n", "a", "value at line 1 is a block scalar; write it on one line"},
		{"mapping", "a:\n  b: 1\n", "a", "value at line 2 is not a scalar"},
		{"escapes", "a: \"1.0\\x2e0\"\n", "a", "quoted value at line 1 has escapes or spans lines; write it plainly"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, err := parseYAML([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			n, ok := lookup(root, tc.path)
			if tc.want == "" {
				if ok {
					t.Fatalf("lookup(%q) found %q, want nothing", tc.path, n.Value)
				}
				return
			}
			_, err = locate([]byte(tc.yaml), n)
			if err == nil || err.Error() != tc.want {
				t.Errorf("locate = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := parseYAML([]byte("a: [1, 2\n")); err == nil || !strings.HasPrefix(err.Error(), "malformed YAML: ") {
		t.Errorf("parseYAML(unclosed flow) = %v, want a malformed YAML error", err)
	}
}
