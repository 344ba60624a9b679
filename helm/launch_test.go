package helm

import (
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestLaunchMode renders launch mode (enable_api_only_mode: false): the hub
// is wired as binderhub's chart wires it, and the launch settings reach the
// server's environment.
func TestLaunchMode(t *testing.T) {
	t.Parallel()
	const launch = "config:\n  BinderHub:\n    enable_api_only_mode: false\n    hub_url: https://hub.example.org/\n"
	const hubSecret = "<from secret hub/hub.services.binder.apiToken>"
	tests := []struct {
		name   string
		values string
		want   map[string]string // the server's variables of launch mode; "" must be absent
		secret map[string]string // keys of the chart's Secret; "" must be absent
	}{
		{name: "API-only mode: no launch settings", values: "config:\n  BinderHub:\n    hub_url: https://hub.example.org/\n    pod_quota: 3\n",
			want: map[string]string{"BINDERBUILD_API_ONLY": "true", "BINDERBUILD_HUB_URL": "", "BINDERBUILD_POD_QUOTA": "", "JUPYTERHUB_API_TOKEN": ""}},
		{name: "the hub Secret without authentication", values: launch,
			want: map[string]string{"BINDERBUILD_API_ONLY": "false", "BINDERBUILD_HUB_URL": "https://hub.example.org/",
				"JUPYTERHUB_API_TOKEN": hubSecret, "JUPYTERHUB_API_URL": "", "BINDERBUILD_HUB_API_TOKEN": ""},
			secret: map[string]string{"hub-api-token": ""}},
		{name: "authentication: the hub API at hub_url_local as binderhub's chart",
			values: launch + "    auth_enabled: true\n    hub_url_local: http://hub:8081\n",
			want: map[string]string{"BINDERBUILD_AUTH": "jupyterhub", "BINDERBUILD_HUB_URL_LOCAL": "http://hub:8081",
				"JUPYTERHUB_API_URL": "http://hub:8081/hub/api/", "JUPYTERHUB_API_TOKEN": hubSecret}},
		{name: "extraEnv gives the hub API and the token",
			values: launch + "    auth_enabled: true\nextraEnv:\n  - {name: JUPYTERHUB_API_URL, value: http://hub.ns:8081/hub/api}\n  - {name: JUPYTERHUB_API_TOKEN, valueFrom: {secretKeyRef: {name: my-hub, key: token}}}\n",
			want:   map[string]string{"JUPYTERHUB_API_URL": "http://hub.ns:8081/hub/api", "JUPYTERHUB_API_TOKEN": "<from secret my-hub/token>"}},
		{name: "hub_api_token from the chart's Secret", values: launch + "    hub_api_token: s3cret\n",
			want:   map[string]string{"BINDERBUILD_HUB_API_TOKEN": "<from secret binderhub/hub-api-token>", "JUPYTERHUB_API_TOKEN": ""},
			secret: map[string]string{"hub-api-token": "s3cret"}},
		{name: "quotas and launcher and pages",
			values: launch + "    pod_quota: 0\n    per_repo_quota: 10\n    per_repo_quota_higher: 30\n    badge_base_url: https://mybinder.example.org/\n" +
				"    banner_message: <b>Hi</b>\n    about_message: About us\n" +
				"  Launcher:\n    retries: 3\n    retry_delay: 2.5\n    launch_timeout: 600\n    allow_named_servers: true\n    named_server_limit_per_user: 2\n" +
				"  KubernetesLaunchQuota:\n    namespace: users\n",
			want: map[string]string{"BINDERBUILD_POD_QUOTA": "0", "BINDERBUILD_PER_REPO_QUOTA": "10", "BINDERBUILD_PER_REPO_QUOTA_HIGHER": "30",
				"BINDERBUILD_BADGE_BASE_URL": "https://mybinder.example.org/", "BINDERBUILD_BANNER_MESSAGE": "<b>Hi</b>", "BINDERBUILD_ABOUT_MESSAGE": "About us",
				"BINDERBUILD_RETRIES": "3", "BINDERBUILD_RETRY_DELAY": "2500ms", "BINDERBUILD_LAUNCH_TIMEOUT": "600000ms",
				"BINDERBUILD_ALLOW_NAMED_SERVERS": "true", "BINDERBUILD_NAMED_SERVER_LIMIT_PER_USER": "2", "BINDERBUILD_QUOTA_NAMESPACE": "users"}},
		{name: "LaunchQuota.total_quota", values: launch + "  LaunchQuota:\n    total_quota: 7\n",
			want: map[string]string{"BINDERBUILD_POD_QUOTA": "7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := render(t, testRelease, testNS, slices.Concat(noRegistry, []string{"--values", writeValues(t, tc.values)})...)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			env := serverEnv(t, objs)
			for _, name := range slices.Sorted(maps.Keys(tc.want)) {
				if got, ok := env[name]; got != tc.want[name] || ok != (tc.want[name] != "") {
					t.Errorf("%s = %q (set: %v), want %q", name, got, ok, tc.want[name])
				}
			}
			names := map[string]int{}
			for _, e := range mustFind[*appsv1.Deployment](t, objs, "binderhub").Spec.Template.Spec.Containers[0].Env {
				if names[e.Name]++; names[e.Name] == 2 && strings.HasPrefix(e.Name, "JUPYTERHUB_") {
					t.Errorf("%s is set twice", e.Name)
				}
			}
			secret := mustFind[*corev1.Secret](t, objs, "binderhub")
			for key, want := range tc.secret {
				if got, ok := secret.StringData[key]; got != want || ok != (want != "") {
					t.Errorf("Secret key %s = %q (set: %v), want %q", key, got, ok, want)
				}
			}
		})
	}
}
