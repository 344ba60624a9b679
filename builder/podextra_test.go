package builder

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestPodExtras checks upstream's KubernetesBuildExecutor.resources and
// extra_envs as the server reads them from its environment.
func TestPodExtras(t *testing.T) {
	cfg := PodConfig{BuildImage: "quay.io/jupyterhub/repo2docker:2024.07.0", DockerHost: "/var/run/docker.sock", BuildTimeout: time.Hour,
		BuildMemoryRequest: "1G", BuildMemoryLimit: "2G", BuildEphemeralStorageLimit: "10Gi"}
	if err := cfg.BuildResources.UnmarshalText([]byte(`{"requests": {"cpu": 0.5, "memory": "3Gi"}, "limits": {"cpu": "2", "nvidia.com/gpu": 1}}`)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.BuildExtraEnv.UnmarshalText([]byte(`{"PIP_INDEX_URL": "https://pypi.example.org/simple", "GIT_CREDENTIAL_ENV": "from extra_envs", "A": ""}`)); err != nil {
		t.Fatal(err)
	}
	req := testReq
	req.GitCredentials = "password=x"
	out, err := yaml.Marshal(cfg.pod(req, ""))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "pods/extras.yaml", out)
}

func TestPodExtrasRefused(t *testing.T) {
	tests := []struct {
		name, resources, env, want string
	}{
		{name: "unknown resources field", resources: `{"request": {"cpu": "1"}}`, want: `unknown field "request"`},
		{name: "bad quantity", resources: `{"limits": {"cpu": "lots"}}`, want: "quantities must match"},
		{name: "two values", resources: `{} {}`, want: "want one JSON value"},
		{name: "not an object", env: `["A=1"]`, want: "want JSON"},
		{name: "number value", env: `{"A": 1}`, want: "want JSON"},
		{name: "= in a name", env: `{"A=B": "1"}`, want: `invalid variable name "A=B"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.resources != "" {
				var r Resources
				err = r.UnmarshalText([]byte(tc.resources))
			} else {
				var e EnvVars
				err = e.UnmarshalText([]byte(tc.env))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("UnmarshalText = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
