package helm

import (
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/binderbuild/binderbuild/internal/testcluster"
)

const upgradesValues = `
config:
  BinderHub: {image_prefix: "quay.io/org/hub-"}
  DockerRegistry: {url: "http://registry.local:5000"}
upgrades:
  enabled: true
  schedule: "0 6 * * 1"
  repository: my-org/my-hub-deploy
  apply: true
  existingSecret: upgrades-github
  verifyUrl: https://binder.example.org/
`

// TestUpgradesCronJob: off by default; when enabled, a CronJob running
// `binderbuild upgrades` with the repository, the credentials from the
// Secret and the server's registry settings.
func TestUpgradesCronJob(t *testing.T) {
	t.Parallel()
	if _, ok := find[*batchv1.CronJob](mustRender(t), "binderhub-upgrades"); ok {
		t.Errorf("default render has the upgrades CronJob, want none (off by default)")
	}
	cj := mustFind[*batchv1.CronJob](t, mustRender(t, "--values", writeValues(t, upgradesValues)), "binderhub-upgrades")
	if cj.Spec.Schedule != "0 6 * * 1" {
		t.Errorf("schedule = %q, want 0 6 * * 1", cj.Spec.Schedule)
	}
	c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"upgrades"}) {
		t.Errorf("args = %q, want [upgrades]", c.Args)
	}
	env := plainEnv(c)
	want := map[string]string{
		"BINDERBUILD_UPGRADES_REPO":           "my-org/my-hub-deploy",
		"BINDERBUILD_UPGRADES_APPLY":          "true",
		"BINDERBUILD_UPGRADES_FORK":           "false",
		"BINDERBUILD_UPGRADES_GITHUB_TOKEN":   "<from secret upgrades-github/token>",
		"BINDERBUILD_UPGRADES_VERIFY_URL":     "https://binder.example.org/",
		"BINDERBUILD_UPGRADES_VERIFY_TOKEN":   "<from secret upgrades-github/verify-token>",
		"BINDERBUILD_REGISTRY_INSECURE_HOSTS": "registry.local:5000",
		"DOCKER_CONFIG":                       "/etc/binderhub/docker",
	}
	for name, v := range want {
		if env[name] != v {
			t.Errorf("env %s = %q, want %q", name, env[name], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("env = %v, want exactly %v", env, want)
	}

	app := mustFind[*batchv1.CronJob](t, mustRender(t, "--values", writeValues(t, upgradesValues), "--set", "upgrades.githubApp.id=4242"), "binderhub-upgrades")
	env = plainEnv(app.Spec.JobTemplate.Spec.Template.Spec.Containers[0])
	if env["BINDERBUILD_UPGRADES_GITHUB_APP_ID"] != "4242" || env["BINDERBUILD_UPGRADES_GITHUB_APP_KEY_FILE"] != "/etc/binderbuild-upgrades/private-key" || env["BINDERBUILD_UPGRADES_GITHUB_TOKEN"] != "" {
		t.Errorf("GitHub App env = %v, want the App id and key file instead of a token", env)
	}

	for values, wantErr := range map[string]string{
		"upgrades: {enabled: true, existingSecret: s}":                           "upgrades.repository: set the GitHub owner/name",
		"upgrades: {enabled: true, repository: o/r}":                             "upgrades.existingSecret: name a Secret",
		"upgrades: {enabled: true, repository: 'not a repo', existingSecret: s}": "/upgrades/repository",
	} {
		if _, err := render(t, testRelease, testNS, "--values", writeValues(t, values)); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: render error %v, want one containing %q", values, err, wantErr)
		}
	}
}

// TestUpgradesCronJobCluster: the real kube-apiserver accepts the CronJob
// with strict field validation and without warnings.
func TestUpgradesCronJobCluster(t *testing.T) {
	c := testcluster.StartT(t)
	ns := c.NewNamespace(t.Context(), t)
	out, err := render(t, testRelease, ns, "--values", writeValues(t, upgradesValues), "--show-only", "templates/upgrades-cronjob.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if w := createAll(t, c.RestConfig(), ns, out); len(w) != 0 {
		t.Errorf("kube-apiserver warnings: %q", w)
	}
	if _, err := c.Client().BatchV1().CronJobs(ns).Get(t.Context(), "binderhub-upgrades", metav1.GetOptions{}); err != nil {
		t.Errorf("after create: %v", err)
	}
}
