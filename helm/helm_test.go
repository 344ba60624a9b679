package helm

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/binderbuild/binderbuild/internal/testcluster"
)

var update = flag.Bool("update", false, "rewrite the golden files under binderbuild/testdata/golden")

const (
	chartDir = "binderbuild"
	// testRelease and testNS are the release and namespace of the renders.
	testRelease = "binderbuild"
	testNS      = "binder"
)

// valuesCase is a values file rendered, linted and compared with
// binderbuild/testdata/golden/<name>.yaml.
type valuesCase struct {
	name string
	file string // relative to the chart
	// set changes the keys the render refuses (TestCorpus checks the
	// refusals), as --set arguments.
	set []string
}

var valuesCases = []valuesCase{
	{"defaults", "testdata/values/no-registry.yaml", nil},
	{"2i2c", "testdata/values/2i2c.yaml", nil},
	{"binderhub-service-ci", "testdata/values/binderhub-service-ci.yaml", nil},
	{"binderhub-service-install-guide", "testdata/values/binderhub-service-install-guide.yaml", []string{"config.BinderHub.enable_api_only_mode=true"}},
	{"binderhub-service-lint", "testdata/values/binderhub-service-lint.yaml", []string{"image.repository=ghcr.io/binderbuild/binderbuild", "image.tag=", "config.BinderHub.image_prefix=quay.io/dummy/binder-"}},
	{"everything", "testdata/values/everything.yaml", nil},
	{"example-google-artifact-registry", "examples/google-artifact-registry.yaml", nil},
	{"example-quay", "examples/quay.yaml", nil},
}

func (c valuesCase) args() []string {
	args := []string{"--values", filepath.Join(chartDir, c.file)}
	for _, s := range c.set {
		args = append(args, "--set", s)
	}
	return args
}

// noRegistry are the least values the chart renders with (see the file);
// later --values override them.
var noRegistry = []string{"--values", filepath.Join(chartDir, "testdata", "values", "no-registry.yaml")}

// helmPath is the helm built by `make helm-bin`; the test fails without it.
func helmPath(t testing.TB) string {
	t.Helper()
	dir, err := testcluster.BinDir()
	if err != nil {
		t.Fatalf("find the binary folder: %v", err)
	}
	p := filepath.Join(dir, "helm")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("helm is missing (%v): run `make helm-bin`", err)
	}
	return p
}

// runHelm runs helm with private config, cache and data folders and
// returns its standard output; the error carries its standard error.
func runHelm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), helmPath(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// render runs helm template for release in namespace ns.
func render(t testing.TB, release, ns string, args ...string) (string, error) {
	t.Helper()
	return runHelm(t, append([]string{"template", release, chartDir, "--namespace", ns}, args...)...)
}

// mustRender renders testRelease in testNS over noRegistry and decodes the
// objects.
func mustRender(t testing.TB, args ...string) objects {
	t.Helper()
	out, err := render(t, testRelease, testNS, append(slices.Clone(noRegistry), args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

// documents splits a render into its non-empty documents, as JSON.
func documents(t testing.TB, manifest string) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("split the render: %v", err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("parse rendered YAML: %v\n%s", err, doc)
		}
		if s := string(bytes.TrimSpace(j)); s != "null" && s != "" {
			docs = append(docs, j)
		}
	}
}

type objects []runtime.Object

func decode(t testing.TB, manifest string) objects {
	t.Helper()
	var objs objects
	for _, doc := range documents(t, manifest) {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode rendered object: %v\n%s", err, doc)
		}
		objs = append(objs, obj)
	}
	return objs
}

type namedObject interface {
	runtime.Object
	GetName() string
}

// find returns the object of type T named name.
func find[T namedObject](objs objects, name string) (T, bool) {
	for _, o := range objs {
		if v, ok := o.(T); ok && v.GetName() == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func mustFind[T namedObject](t testing.TB, objs objects, name string) T {
	t.Helper()
	v, ok := find[T](objs, name)
	if !ok {
		t.Fatalf("no %T named %q in the render", v, name)
	}
	return v
}

// count returns how many objects of type T the render has.
func count[T namedObject](objs objects) int {
	n := 0
	for _, o := range objs {
		if _, ok := o.(T); ok {
			n++
		}
	}
	return n
}

// plainEnv is the container's env with literal values; variables from
// secrets or fields map to "<from KIND>".
func plainEnv(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "<from secret " + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key + ">"
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "<from field " + e.ValueFrom.FieldRef.FieldPath + ">"
		}
	}
	return env
}

func serverEnv(t testing.TB, objs objects) map[string]string {
	t.Helper()
	return plainEnv(mustFind[*appsv1.Deployment](t, objs, "binderhub").Spec.Template.Spec.Containers[0])
}

// parseKV reads binderbuild's k:v,k:v map format.
func parseKV(s string) map[string]string {
	m := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		if k, v, ok := strings.Cut(pair, ":"); ok {
			m[k] = v
		}
	}
	return m
}

func TestLint(t *testing.T) {
	t.Parallel()
	for _, tc := range valuesCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, tc.args()...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint output lacks \"0 chart(s) failed\":\n%s", out)
			}
		})
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range valuesCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := render(t, testRelease, testNS, tc.args()...)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(chartDir, "testdata", "golden", tc.name+".yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./helm -update writes it)", err)
			}
			if d := firstDifference(string(want), got); d != "" {
				t.Errorf("render of %s differs from %s (go test ./helm -update rewrites it): %s", tc.name, path, d)
			}
		})
	}
}

// firstDifference describes the first differing line of want and got, or
// returns "" when they are equal.
func firstDifference(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, gl, wl)
		}
	}
	return "trailing newlines differ"
}

func TestBuildNodeSelector(t *testing.T) {
	t.Parallel()
	user := `{"hub.jupyter.org/node-purpose": "user", "cloud.google.com/gke-nodepool": "user-pool"}`
	tests := []struct {
		name string
		args []string
		want map[string]string // nil: no node selector
	}{
		{"defaults to dockerApi.nodeSelector",
			[]string{"--set-json", "dockerApi.nodeSelector=" + user},
			map[string]string{"hub.jupyter.org/node-purpose": "user", "cloud.google.com/gke-nodepool": "user-pool"}},
		{"KubernetesBuildExecutor.node_selector wins",
			[]string{"--set-json", "dockerApi.nodeSelector=" + user,
				"--set-json", `config.KubernetesBuildExecutor.node_selector={"node.kubernetes.io/instance-type": "r5.xlarge"}`},
			map[string]string{"node.kubernetes.io/instance-type": "r5.xlarge"}},
		{"deprecated BinderHub.build_node_selector",
			[]string{"--set-json", `config.BinderHub.build_node_selector={"pool": "builds"}`},
			map[string]string{"pool": "builds"}},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs := mustRender(t, tc.args...)
			env, ok := serverEnv(t, objs)["BINDERBUILD_BUILD_NODE_SELECTOR"]
			if tc.want == nil {
				if ok {
					t.Errorf("BINDERBUILD_BUILD_NODE_SELECTOR = %q, want unset", env)
				}
				return
			}
			if got := parseKV(env); !maps.Equal(got, tc.want) {
				t.Errorf("BINDERBUILD_BUILD_NODE_SELECTOR = %q, want %v", env, tc.want)
			}
		})
	}
	t.Run("equals the DaemonSet's when only dockerApi.nodeSelector is set", func(t *testing.T) {
		t.Parallel()
		objs := mustRender(t, "--values", filepath.Join(chartDir, "examples", "google-artifact-registry.yaml"))
		ds := mustFind[*appsv1.DaemonSet](t, objs, "docker-api")
		env := serverEnv(t, objs)["BINDERBUILD_BUILD_NODE_SELECTOR"]
		if got, want := parseKV(env), ds.Spec.Template.Spec.NodeSelector; len(want) == 0 || !maps.Equal(got, want) {
			t.Errorf("BINDERBUILD_BUILD_NODE_SELECTOR = %q, want the DaemonSet's node selector %v", env, want)
		}
	})
}

func TestDockerAPISocket(t *testing.T) {
	t.Parallel()
	for _, storage := range []string{"", `{"emptyDir": {"sizeLimit": "15Gi"}}`} {
		t.Run("storage="+storage, func(t *testing.T) {
			t.Parallel()
			var args []string
			if storage != "" {
				args = []string{"--set-json", "dockerApi.storage=" + storage}
			}
			out, err := render(t, "staging", "hub-ns", append(slices.Clone(noRegistry), args...)...)
			if err != nil {
				t.Fatal(err)
			}
			objs := decode(t, out)
			const (
				run  = "/var/run/hub-ns-staging/docker-api"
				data = "/var/lib/hub-ns-staging/docker-api"
				sock = run + "/docker-api.sock"
			)
			if got := serverEnv(t, objs)["BINDERBUILD_DOCKER_HOST"]; got != sock {
				t.Errorf("BINDERBUILD_DOCKER_HOST = %q, want %q", got, sock)
			}
			spec := mustFind[*appsv1.DaemonSet](t, objs, "docker-api").Spec.Template.Spec
			args = spec.Containers[0].Args
			for _, want := range []string{"dockerd", "--data-root=" + data, "--exec-root=/run/docker", "--host=unix://" + sock} {
				if !slices.Contains(args, want) {
					t.Errorf("docker-api args %q lack %q", args, want)
				}
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range spec.Volumes {
				volumes[v.Name] = v
			}
			if hp := volumes["exec"].HostPath; hp == nil || hp.Path != run || *hp.Type != corev1.HostPathDirectoryOrCreate {
				t.Errorf("exec volume = %+v, want hostPath %s DirectoryOrCreate", volumes["exec"].VolumeSource, run)
			}
			switch d := volumes["data"]; storage {
			case "":
				if d.HostPath == nil || d.HostPath.Path != data {
					t.Errorf("data volume = %+v, want hostPath %s", d.VolumeSource, data)
				}
			default:
				if d.EmptyDir == nil || d.EmptyDir.SizeLimit == nil || d.EmptyDir.SizeLimit.Cmp(resource.MustParse("15Gi")) != 0 {
					t.Errorf("data volume = %+v, want emptyDir with sizeLimit 15Gi", d.VolumeSource)
				}
			}
		})
	}
}

func TestRole(t *testing.T) {
	t.Parallel()
	objs := mustRender(t)
	role := mustFind[*rbacv1.Role](t, objs, "binderhub")
	got := map[string][]string{}
	for _, r := range role.Rules {
		if len(r.APIGroups) != 1 || len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %+v: want one API group, no resource names or URLs", r)
		}
		for _, res := range r.Resources {
			key := res
			if r.APIGroups[0] != "" {
				key += "." + r.APIGroups[0]
			}
			got[key] = append(got[key], r.Verbs...)
		}
	}
	for _, verbs := range got {
		slices.Sort(verbs)
	}
	want := map[string][]string{
		"pods":                       {"create", "delete", "get", "list", "watch"},
		"pods/log":                   {"get"},
		"events":                     {"list"},
		"leases.coordination.k8s.io": {"create", "get", "update"},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Role rules = %v, want %v", got, want)
	}
	binding := mustFind[*rbacv1.RoleBinding](t, objs, "binderhub")
	if binding.RoleRef.Name != "binderhub" || len(binding.Subjects) != 1 ||
		binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != "binderhub" || binding.Subjects[0].Namespace != testNS {
		t.Errorf("RoleBinding = %+v %+v, want Role binderhub bound to ServiceAccount %s/binderhub", binding.RoleRef, binding.Subjects, testNS)
	}
	if role.Namespace != "" || binding.Namespace != "" {
		t.Errorf("Role in %q, RoleBinding in %q: want the release namespace", role.Namespace, binding.Namespace)
	}
	if n := count[*rbacv1.ClusterRole](objs) + count[*rbacv1.ClusterRoleBinding](objs); n != 0 {
		t.Errorf("render has %d cluster-wide RBAC objects, want 0", n)
	}
	if n := count[*rbacv1.Role](mustRender(t, "--set", "rbac.create=false")); n != 0 {
		t.Errorf("rbac.create=false renders %d Roles, want 0", n)
	}
	for _, set := range []string{"config.KubernetesBuildExecutor.namespace=builds", "config.BinderHub.build_namespace=builds"} {
		objs := mustRender(t, "--set", set)
		role, binding := mustFind[*rbacv1.Role](t, objs, "binderhub"), mustFind[*rbacv1.RoleBinding](t, objs, "binderhub")
		if role.Namespace != "builds" || binding.Namespace != "builds" || binding.Subjects[0].Namespace != testNS {
			t.Errorf("%s: Role in %q, RoleBinding in %q for %s/%s; want both in builds for the ServiceAccount in %s",
				set, role.Namespace, binding.Namespace, binding.Subjects[0].Namespace, binding.Subjects[0].Name, testNS)
		}
	}
}

// docker-api tolerates what build pods tolerate, plus its own tolerations.
func TestDockerAPITolerations(t *testing.T) {
	t.Parallel()
	own := corev1.Toleration{Key: "hub.jupyter.org_dedicated", Operator: corev1.TolerationOpExists}
	gpu := corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	for _, tc := range []struct {
		name string
		own  []corev1.Toleration
		args []string
	}{
		{"defaults", nil, nil},
		{"another", []corev1.Toleration{gpu}, []string{"--set", "dockerApi.tolerations[0].key=gpu", "--set", "dockerApi.tolerations[0].operator=Exists", "--set", "dockerApi.tolerations[0].effect=NoSchedule"}},
		{"one of the same key", []corev1.Toleration{own}, []string{"--set", "dockerApi.tolerations[0].key=hub.jupyter.org_dedicated", "--set", "dockerApi.tolerations[0].operator=Exists"}},
	} {
		ds := mustFind[*appsv1.DaemonSet](t, mustRender(t, tc.args...), "docker-api")
		want := append(buildPodTolerations(tc.own), tc.own...)
		if got := ds.Spec.Template.Spec.Tolerations; !slices.Equal(got, want) {
			t.Errorf("%s: docker-api tolerations %+v, want %+v", tc.name, got, want)
		}
	}
}

// buildPodTolerations are the build pods' tolerations (builder/pod.go) that
// docker-api gets besides own: those of keys own does not have.
func buildPodTolerations(own []corev1.Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for _, key := range []string{"hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated"} {
		if !slices.ContainsFunc(own, func(t corev1.Toleration) bool { return t.Key == key }) {
			out = append(out, corev1.Toleration{Key: key, Operator: corev1.TolerationOpEqual, Value: "user", Effect: corev1.TaintEffectNoSchedule})
		}
	}
	return out
}

func TestServerPod(t *testing.T) {
	t.Parallel()
	objs := mustRender(t, "--values", filepath.Join(chartDir, "testdata", "values", "2i2c.yaml"))
	dep := mustFind[*appsv1.Deployment](t, objs, "binderhub")
	pod := dep.Spec.Template
	if pod.Labels["hub.jupyter.org/network-access-hub"] != "true" || pod.Labels["app.kubernetes.io/component"] != "binderhub" {
		t.Errorf("pod labels = %v, want hub.jupyter.org/network-access-hub: \"true\" and component binderhub", pod.Labels)
	}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		t.Errorf("enableServiceLinks = %v, want false", pod.Spec.EnableServiceLinks)
	}
	if pod.Spec.ServiceAccountName != "binderhub" {
		t.Errorf("serviceAccountName = %q, want binderhub", pod.Spec.ServiceAccountName)
	}
	c := pod.Spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot,
		sc.RunAsUser == nil || *sc.RunAsUser != 1000,
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem,
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation,
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		b, _ := json.Marshal(sc)
		t.Errorf("securityContext = %s, want non-root uid 1000, read-only root, no privilege escalation, all capabilities dropped", b)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8585 {
		t.Errorf("ports = %+v, want http 8585", c.Ports)
	}
	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
	wantPaths := map[string]string{
		"startup":   "/services/binder/versions",
		"readiness": "/services/binder/health",
		// A registry outage must not restart the pod: liveness needs no outside service.
		"liveness": "/services/binder/versions",
	}
	for name, p := range probes {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != wantPaths[name] || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe = %+v, want GET %s on port http", name, p, wantPaths[name])
		}
	}
	env := plainEnv(c)
	for name, want := range map[string]string{
		"PUSH_SECRET_NAME":   "build-pods-docker-config",
		"HELM_RELEASE_NAME":  testRelease,
		"BUILD_NAMESPACE":    "<from field metadata.namespace>",
		"NAMESPACE":          "<from field metadata.namespace>",
		"DOCKER_CONFIG":      "/etc/binderhub/docker",
		"JUPYTERHUB_API_URL": "http://hub.staging.svc.cluster.local:8081/hub/api",
	} {
		if env[name] != want {
			t.Errorf("env %s = %q, want %q", name, env[name], want)
		}
	}
	// Selectors are immutable: an upgrade from a binderhub-service release
	// works only if they are binderhub-service's.
	appLabels := map[string]string{"app.kubernetes.io/name": "binderhub-service", "app.kubernetes.io/instance": testRelease}
	ds := mustFind[*appsv1.DaemonSet](t, objs, "docker-api")
	for what, sel := range map[string]struct{ got, want map[string]string }{
		"Deployment": {dep.Spec.Selector.MatchLabels, withLabel(appLabels, "app.kubernetes.io/component", "binderhub")},
		"DaemonSet":  {ds.Spec.Selector.MatchLabels, withLabel(appLabels, "app.kubernetes.io/component", "docker-api")},
	} {
		if !maps.Equal(sel.got, sel.want) {
			t.Errorf("%s selector = %v, want %v", what, sel.got, sel.want)
		}
	}
	svc := mustFind[*corev1.Service](t, objs, "binderhub")
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 8090 || p[0].TargetPort.String() != "http" {
		t.Errorf("Service ports = %+v, want 8090 → http", p)
	}
	if !maps.Equal(svc.Spec.Selector, withLabel(appLabels, "app.kubernetes.io/component", "binderhub")) {
		t.Errorf("Service selector = %v, want the binderhub-service app labels and component binderhub", svc.Spec.Selector)
	}
}

// withLabel returns a copy of labels with k=v added.
func withLabel(labels map[string]string, k, v string) map[string]string {
	m := maps.Clone(labels)
	m[k] = v
	return m
}

func TestSettings(t *testing.T) {
	t.Parallel()
	socket := "/var/run/binder-binderbuild/docker-api/docker-api.sock"
	tests := []struct {
		name   string
		values string
		want   map[string]string // "" means: must be unset
	}{
		{"defaults", ``, map[string]string{
			"BINDERBUILD_LISTEN": ":8585", "BINDERBUILD_BASE_URL": "/", "BINDERBUILD_API_ONLY": "true",
			"BINDERBUILD_AUTH": "none", "BINDERBUILD_EXECUTOR": "kubernetes", "BINDERBUILD_DOCKER_HOST": socket,
			"BINDERBUILD_USE_REGISTRY": "false", "BINDERBUILD_IMAGE_PREFIX": "", "BINDERBUILD_PUSH_SECRET": "",
			"BINDERBUILD_BUILD_EPHEMERAL_STORAGE_REQUEST": "", "BINDERBUILD_BUILD_EPHEMERAL_STORAGE_LIMIT": "",
			"BINDERBUILD_BUILD_TIMEOUT": "", "BINDERBUILD_BUILD_APPENDIX": "",
		}},
		{"BinderHub", `
config:
  BinderHub:
    base_url: services/binder
    port: 8090
    enable_api_only_mode: true
    auth_enabled: true
    use_registry: false
    image_prefix: registry.example.org/binder/r2d-
    cors_allow_origin: "*"
    ban_networks: {203.0.113.0/24: documentation, 192.0.2.0/24: test-net-1}
    log_level: WARNING
    concurrent_build_limit: 100000
`, map[string]string{
			"BINDERBUILD_LISTEN": ":8090", "BINDERBUILD_BASE_URL": "/services/binder/", "BINDERBUILD_API_ONLY": "true",
			"BINDERBUILD_AUTH": "jupyterhub", "BINDERBUILD_USE_REGISTRY": "false",
			"BINDERBUILD_IMAGE_PREFIX": "registry.example.org/binder/r2d-", "BINDERBUILD_CORS_ALLOW_ORIGIN": "*",
			"BINDERBUILD_BAN_NETWORKS": "192.0.2.0/24=test-net-1,203.0.113.0/24=documentation",
			"BINDERBUILD_LOG_LEVEL":    "warn", "BINDERBUILD_CONCURRENT_BUILD_LIMIT": "100000",
		}},
		{"build pods", `
buildPods:
  ephemeralStorage: {request: 2Gi, limit: 10Gi}
  perClientLimit: 5
  timeout: 1h30m
config:
  KubernetesBuildExecutor:
    build_image: quay.io/jupyterhub/repo2docker:2025.12.1
    docker_host: unix:///var/run/dind/docker.sock
    push_secret: my-push-secret
    namespace: builds
    memory_limit: 2G
    memory_request: 1073741824
    image_pull_secrets: [a, b]
    repo2docker_extra_args: [--subdir=binder]
    sticky_builds: false
    appendix: RUN echo new
  BinderHub:
    sticky_builds: true
    appendix: RUN echo old
  KubernetesCleaner:
    max_age: 0
`, map[string]string{
			"BINDERBUILD_BUILD_EPHEMERAL_STORAGE_REQUEST": "2Gi", "BINDERBUILD_BUILD_EPHEMERAL_STORAGE_LIMIT": "10Gi",
			"BINDERBUILD_BUILD_IMAGE": "quay.io/jupyterhub/repo2docker:2025.12.1", "BINDERBUILD_DOCKER_HOST": "unix:///var/run/dind/docker.sock",
			"BINDERBUILD_PUSH_SECRET": "my-push-secret", "BINDERBUILD_BUILD_NAMESPACE": "builds",
			// BinderHub byte sizes count K, M, G, T in powers of 1024.
			"BINDERBUILD_BUILD_MEMORY_LIMIT": "2Gi", "BINDERBUILD_BUILD_MEMORY_REQUEST": "1073741824",
			"BINDERBUILD_BUILD_IMAGE_PULL_SECRETS": "a,b", "BINDERBUILD_REPO2DOCKER_EXTRA_ARGS": "--subdir=binder",
			"BINDERBUILD_STICKY_BUILDS": "false", "BINDERBUILD_BUILD_MAX_AGE": "0s",
			"BINDERBUILD_PER_CLIENT_BUILD_LIMIT": "5", "BINDERBUILD_BUILD_TIMEOUT": "1h30m", "BINDERBUILD_BUILD_APPENDIX": "RUN echo new",
		}},
		{"deprecated BinderHub build settings", `
config:
  BinderHub:
    build_image: quay.io/jupyterhub/repo2docker:old
    build_docker_host: /var/run/other.sock
    build_namespace: old-builds
    build_memory_limit: 512M
    build_max_age: 600
    debug: true
    appendix: RUN echo old
`, map[string]string{
			"BINDERBUILD_BUILD_IMAGE": "quay.io/jupyterhub/repo2docker:old", "BINDERBUILD_DOCKER_HOST": "/var/run/other.sock",
			"BINDERBUILD_BUILD_NAMESPACE": "old-builds", "BINDERBUILD_BUILD_MEMORY_LIMIT": "512Mi",
			"BINDERBUILD_BUILD_MAX_AGE": "600s", "BINDERBUILD_LOG_LEVEL": "debug", "BINDERBUILD_BUILD_APPENDIX": "RUN echo old",
		}},
		{"registry and providers", `
config:
  DockerRegistry: {url: "http://localhost:5000"}
  RateLimiter: {limit: 10, period_seconds: 3600}
  GitHubRepoProvider: {access_token: ghp_secret, api_base_url: "https://ghe.example.org/api/v3/", git_credentials: "username=bot\npassword=ghp_git"}
  GitLabRepoProvider: {hostname: gitlab.example.org, private_token: glpat-secret, git_credentials: "username=binderhub\npassword=glpat-git"}
`, map[string]string{
			"BINDERBUILD_REGISTRY_INSECURE_HOSTS": "localhost:5000",
			"BINDERBUILD_RATE_LIMIT":              "10", "BINDERBUILD_RATE_LIMIT_PERIOD": "3600s",
			"BINDERBUILD_GITHUB_API_URL": "https://ghe.example.org/api/v3", "BINDERBUILD_GITLAB_URL": "https://gitlab.example.org",
			// Tokens come from the Secret, never as literal values.
			"BINDERBUILD_GITHUB_TOKEN":           "<from secret binderhub/github-access-token>",
			"BINDERBUILD_GITLAB_PRIVATE_TOKEN":   "<from secret binderhub/gitlab-private-token>",
			"BINDERBUILD_GITHUB_GIT_CREDENTIALS": "<from secret binderhub/github-git-credentials>",
			"BINDERBUILD_GITLAB_GIT_CREDENTIALS": "<from secret binderhub/gitlab-git-credentials>",
			"BINDERBUILD_GITLAB_ACCESS_TOKEN":    "",
		}},
		{"providers specs and build pod settings", `
config:
  BinderHub:
    build_token_secret: 00ff
    build_token_check_origin: false
    repo_providers: {gh: GitHubRepoProvider, zenodo: ZenodoProvider}
  GitHubRepoProvider:
    hostname: github.example.org
    api_base_path: "https://{hostname}/api/v3"
    client_id: Iv1.abc
    client_secret: s3cret
    allowed_specs: ["^org/.*", "^x{1,2}[,a]"]
    banned_specs: [^org/bad.*]
  GitRepoProvider:
    banned_specs: [^https%3A%2F%2Fevil]
    high_quota_specs: [^org/big.*]
    allowed_protocols: [https, git]
  KubernetesBuildExecutor:
    resources: {requests: {cpu: 1}, limits: {memory: 4Gi}}
    extra_envs: {PIP_INDEX_URL: "https://pypi.example.org/simple", RETRIES: 3}
`, map[string]string{
			"BINDERBUILD_GITHUB_HOSTNAME": "github.example.org", "BINDERBUILD_GITHUB_API_URL": "https://github.example.org/api/v3",
			"BINDERBUILD_GITHUB_CLIENT_ID":         "Iv1.abc",
			"BINDERBUILD_GITHUB_CLIENT_SECRET":     "<from secret binderhub/github-client-secret>",
			"BINDERBUILD_BUILD_TOKEN_SECRET":       "<from secret binderhub/build-token-secret>",
			"BINDERBUILD_BUILD_TOKEN_CHECK_ORIGIN": "false",
			"BINDERBUILD_REPO_PROVIDERS":           "gh,zenodo",
			"BINDERBUILD_ALLOWED_SPECS":            "^org/.*,^x{1,2}[,a]",
			// Every class's banned patterns, applied to every provider.
			"BINDERBUILD_BANNED_SPECS":        "^org/bad.*,^https%3A%2F%2Fevil",
			"BINDERBUILD_HIGH_QUOTA_SPECS":    "^org/big.*",
			"BINDERBUILD_GIT_ALLOWED_SCHEMES": "https,git",
			"BINDERBUILD_BUILD_RESOURCES":     `{"limits":{"memory":"4Gi"},"requests":{"cpu":1}}`,
			"BINDERBUILD_BUILD_EXTRA_ENV":     `{"PIP_INDEX_URL":"https://pypi.example.org/simple","RETRIES":"3"}`,
		}},
		{"GitHub Enterprise hostname only", "config:\n  GitHubRepoProvider:\n    hostname: ghe.example.org\n", map[string]string{
			// BinderHub's default api_base_path.
			"BINDERBUILD_GITHUB_HOSTNAME": "ghe.example.org", "BINDERBUILD_GITHUB_API_URL": "https://api.ghe.example.org",
		}},
		{"null node selector labels are dropped", `
nodeSelector: {pool: core, hub.jupyter.org/node-purpose: null}
dockerApi:
  nodeSelector: {pool: user, hub.jupyter.org/node-purpose: null}
`, map[string]string{"BINDERBUILD_BUILD_NODE_SELECTOR": "pool:user"}},
		{"extraEnv comes last and may override", `
extraEnv:
  - name: BINDERBUILD_HEARTBEAT_INTERVAL
    value: 15s
  - name: RELEASE
    value: "{{ .Release.Name }}"
`, map[string]string{"BINDERBUILD_HEARTBEAT_INTERVAL": "15s", "RELEASE": testRelease}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs := mustRender(t, "--values", writeValues(t, tc.values))
			env := serverEnv(t, objs)
			for name, want := range tc.want {
				got, ok := env[name]
				switch {
				case want == "" && ok:
					t.Errorf("%s = %q, want unset", name, got)
				case want != "" && got != want:
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			c := mustFind[*appsv1.Deployment](t, objs, "binderhub").Spec.Template.Spec.Containers[0]
			if last := c.Env[len(c.Env)-1].Name; strings.Contains(tc.values, "extraEnv") && last != "RELEASE" {
				t.Errorf("last env var = %s, want extraEnv's RELEASE", last)
			}
		})
	}
}

func writeValues(t testing.TB, values string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRefused checks values that fail the render, and that the message
// names the key and what to do.
func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values string
		args   []string
		want   []string // substrings of the error
	}{
		{"extraConfig snippet", `
extraConfig:
  my-config: |
    c.BinderHub.hub_url = "https://hub.example.org"
`, nil, []string{"/extraConfig/my-config", "binderbuild cannot run Python extraConfig snippets", "config.<Class>.<trait> or extraEnv"}},
		{"extraConfig snippet without schema validation", `
extraConfig:
  my-config: c.BinderHub.hub_url = "x"
`, []string{"--skip-schema-validation"}, []string{"extraConfig.my-config: binderbuild cannot run Python extraConfig snippets", "config.<Class>.<trait> or extraEnv"}},
		{"unknown top-level key", "hub:\n  url: x\n", nil, []string{"additional properties 'hub' not allowed"}},
		{"enum", "ingress:\n  enabled: true\n  pathType: Anything\n", nil, []string{"/ingress/pathType", "Prefix"}},
		{"comma in a ban label", "config:\n  BinderHub:\n    ban_networks: {\"2001:db8::/32\": \"a,b\"}\n", nil,
			[]string{"config.BinderHub.ban_networks", "cidr=label"}},
		{"byte size", "config:\n  KubernetesBuildExecutor:\n    memory_limit: 2 gigs\n", nil,
			[]string{"config.KubernetesBuildExecutor.memory_limit", "2 gigs"}},
		{"comma in repo2docker_extra_args", "config:\n  KubernetesBuildExecutor:\n    repo2docker_extra_args: [\"--a=1,2\"]\n", nil,
			[]string{"config.KubernetesBuildExecutor.repo2docker_extra_args", "comma-separated"}},
		{"gc without image_prefix", "gc:\n  enabled: true\n", nil, []string{"gc.enabled", "config.BinderHub.image_prefix"}},
		{"ephemeral storage quantity", "buildPods:\n  ephemeralStorage:\n    limit: lots\n", nil, []string{"/buildPods/ephemeralStorage/limit"}},
		{"gc size in old units", "gc:\n  maxTotalSize: 500GB\n", nil, []string{"/gc/maxTotalSize", "500GB"}},
		{"gc size in thousandths", "gc:\n  maxTotalSize: 500m\n", nil, []string{"/gc/maxTotalSize"}},
		{"launch mode without a hub", "config:\n  BinderHub:\n    enable_api_only_mode: false\n", nil, []string{
			"binderbuild cannot honour these values (see Migrating from binderhub-service in the chart README):\n- config.BinderHub.hub_url: not set, but config.BinderHub.enable_api_only_mode is false (launch mode): set it to the public URL of the JupyterHub"}},
		{"BinderHub's page templates in launch mode", "config:\n  BinderHub:\n    enable_api_only_mode: false\n    hub_url: https://hub.example.org\n    extra_footer_scripts: {a: b}\n    build_token_expires_seconds: 60\n", nil, []string{
			"- config.BinderHub.build_token_expires_seconds: binderbuild's pages issue no build tokens",
			"- config.BinderHub.extra_footer_scripts: binderbuild's pages are its own (a strict Content-Security-Policy allows no inline or third-party scripts and no custom templates): remove the key"}},
		{"BinderHub's image", "image:\n  repository: quay.io/2i2c/binderhub-service\n  tag: 0.1.0\n", nil, []string{
			"- image.repository: names BinderHub's Python image, which cannot read this chart's settings; remove `image.repository` and `image.tag`"}},
		{"unknown trait", "config:\n  BinderHub:\n    hub_urll: x\n  MyClass:\n    setting: 1\n", nil, []string{
			"- config.BinderHub.hub_urll: not a BinderHub setting binderbuild knows; remove it",
			"- config.MyClass.setting: not a BinderHub setting binderbuild knows"}},
		{"refused trait with its replacement", "config:\n  KubernetesBuildExecutor:\n    registry_credentials: {a: b}\n  BinderHub:\n    log_tail_lines: 100\n", nil, []string{
			"- config.BinderHub.log_tail_lines: binderbuild replays the whole build log",
			"- config.KubernetesBuildExecutor.registry_credentials: give push credentials with `buildPodsRegistryCredentials`"}},
		{"whole class", "config:\n  BuildExecutor:\n    memory_limit: 1G\n", nil, []string{
			"- config.BuildExecutor: write these traits under `config.KubernetesBuildExecutor`"}},
		{"known snippet name with other content", "extraConfig:\n  binderhub-service-02-set-docker-api: c.KubernetesBuildExecutor.docker_host = '/x'\n", nil, []string{
			"- extraConfig.binderhub-service-02-set-docker-api: binderbuild cannot run Python extraConfig snippets"}},
		{"2i2c's event snippet when on", "custom:\n  sendLogsOfLaunchEventsTo2i2c: true\nextraConfig:\n  01-send-logs-of-launch-events-to-2i2c: |\n" + indent(snippet2i2c(t), "    "), nil, []string{
			"- custom.sendLogsOfLaunchEventsTo2i2c: binderbuild has no Google Cloud Logging sink for launch events: set it to false and send events with `extraEnv` `BINDERBUILD_EVENTS_SINK=http`"}},
		{"allowed specs of two classes", "config:\n  GitHubRepoProvider:\n    allowed_specs: [^a/.*]\n  GitLabRepoProvider:\n    allowed_specs: [^b/.*]\n", nil, []string{
			"config.GitHubRepoProvider.allowed_specs, config.GitLabRepoProvider.allowed_specs: binderbuild applies allowed specs to every provider, so they may be set on one class only; merge them into config.RepoProvider.allowed_specs"}},
		{"comma in a spec pattern", "config:\n  RepoProvider:\n    banned_specs: [\"^(a,b)/.*\"]\n", nil, []string{
			`config.RepoProvider.banned_specs: "^(a,b)/.*": write a comma outside {m,n} and [...] as \x2c`}},
		{"build token secret not hex", "config:\n  BinderHub:\n    build_token_secret: not-hex\n", nil, []string{
			"config.BinderHub.build_token_secret: want hex-encoded bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := slices.Concat(noRegistry, []string{"--values", writeValues(t, tc.values)}, tc.args)
			_, err := render(t, testRelease, testNS, args...)
			if err == nil {
				t.Fatal("render succeeded, want an error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

// TestRegistryNeedsImagePrefix: BinderHub's defaults (use_registry true,
// no image_prefix) would render a server that cannot start.
func TestRegistryNeedsImagePrefix(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"--set", "config.BinderHub.use_registry=true"}} {
		_, err := render(t, testRelease, testNS, args...)
		want := "- config.BinderHub.image_prefix: not set, but config.BinderHub.use_registry is true (BinderHub's default): set image_prefix to where built images are pushed (e.g. quay.io/<org>/binder-), or use_registry: false to build without a registry"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("render %q = %v, want an error containing %q", args, err, want)
		}
	}
}

// snippet2i2c is 2i2c basehub's event snippet, from the stub parent.
func snippet2i2c(t testing.TB) string {
	t.Helper()
	parent := readValues(t, filepath.Join(corpusDir, "parent", "values.yaml"))
	return get(parent, alias+".extraConfig.01-send-logs-of-launch-events-to-2i2c").(string)
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+prefix) + "\n"
}

// TestKnownSnippetsAccepted: known snippets with their known content, inert
// under the values given, render.
func TestKnownSnippetsAccepted(t *testing.T) {
	t.Parallel()
	values := "custom:\n  sendLogsOfLaunchEventsTo2i2c: false\nextraConfig:\n  01-send-logs-of-launch-events-to-2i2c: |\n" + indent(snippet2i2c(t), "    ")
	env := serverEnv(t, mustRender(t, "--values", writeValues(t, values)))
	if env["BINDERBUILD_EVENTS_SINK"] != "" {
		t.Errorf("BINDERBUILD_EVENTS_SINK = %q, want unset (the snippet sends nothing)", env["BINDERBUILD_EVENTS_SINK"])
	}
}

func TestExtraConfigDefaultSnippetsAccepted(t *testing.T) {
	t.Parallel()
	// binderhub-service's own defaults, as a copied values.yaml carries them:
	// binderbuild does both natively.
	values := `
extraConfig:
  binderhub-service-01-build-pods-docker-config: |
    import os
    c.KubernetesBuildExecutor.push_secret = os.environ["PUSH_SECRET_NAME"]
  binderhub-service-02-set-docker-api: |
    import os
    helm_release_name = os.environ["HELM_RELEASE_NAME"]
    namespace = os.environ["NAMESPACE"]
    c.KubernetesBuildExecutor.docker_host = f"/var/run/{ namespace }-{ helm_release_name }/docker-api/docker-api.sock"
  disabled-snippet: null
`
	env := serverEnv(t, mustRender(t, "--values", writeValues(t, values)))
	if got, want := env["PUSH_SECRET_NAME"], "build-pods-docker-config"; got != want {
		t.Errorf("PUSH_SECRET_NAME = %q, want %q", got, want)
	}
	if got, want := env["BINDERBUILD_DOCKER_HOST"], "/var/run/binder-binderbuild/docker-api/docker-api.sock"; got != want {
		t.Errorf("BINDERBUILD_DOCKER_HOST = %q, want %q", got, want)
	}
}

func TestDockerConfigSecrets(t *testing.T) {
	t.Parallel()
	creds := `
buildPodsRegistryCredentials: {server: "https://quay.io", username: robot, password: pw}
buildPodsDockerConfig: {credHelpers: {"gcr.io": gcloud}}
config:
  DockerRegistry: {url: "https://registry.example.org", username: checker, password: check-pw}
`
	auth := func(user, pw string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":" + pw)) }
	tests := []struct {
		name         string
		values       string
		buildPods    string
		serverConfig string
	}{
		{"credentials need use_registry", creds,
			`{"credHelpers":{"gcr.io":"gcloud"}}`,
			`{"auths":{"https://registry.example.org":{"auth":"` + auth("checker", "check-pw") + `"}},"credHelpers":{"gcr.io":"gcloud"}}`},
		{"use_registry", creds + "  BinderHub: {use_registry: true, image_prefix: quay.io/org/binder-}\n",
			`{"auths":{"https://quay.io":{"auth":"` + auth("robot", "pw") + `"}},"credHelpers":{"gcr.io":"gcloud"}}`,
			`{"auths":{"https://quay.io":{"auth":"` + auth("robot", "pw") + `"},"https://registry.example.org":{"auth":"` + auth("checker", "check-pw") + `"}},"credHelpers":{"gcr.io":"gcloud"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs := mustRender(t, "--values", writeValues(t, tc.values))
			for name, want := range map[string]string{
				"build-pods-docker-config/config.json": tc.buildPods,
				"binderhub/docker-config.json":         tc.serverConfig,
			} {
				secret, key, _ := strings.Cut(name, "/")
				s := mustFind[*corev1.Secret](t, objs, secret)
				var got, wantJSON any
				if err := json.Unmarshal([]byte(s.StringData[key]), &got); err != nil {
					t.Fatalf("%s: %v\n%s", name, err, s.StringData[key])
				}
				if err := json.Unmarshal([]byte(want), &wantJSON); err != nil {
					t.Fatal(err)
				}
				if g, w := mustJSON(got), mustJSON(wantJSON); g != w {
					t.Errorf("%s = %s, want %s", name, g, w)
				}
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v) // map keys sorted
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestNetworkPolicies(t *testing.T) {
	t.Parallel()
	objs := mustRender(t)
	selectors := map[string]map[string]string{
		"binderhub-builder-network-policy": {"component": "binderhub-build"},
		"binderhub-dind-network-policy": {
			"app.kubernetes.io/name": "binderhub-service", "app.kubernetes.io/instance": testRelease, "app.kubernetes.io/component": "docker-api",
		},
	}
	for name, selector := range selectors {
		np := mustFind[*networkingv1.NetworkPolicy](t, objs, name)
		if !maps.Equal(np.Spec.PodSelector.MatchLabels, selector) {
			t.Errorf("%s selects %v, want %v", name, np.Spec.PodSelector.MatchLabels, selector)
		}
		if len(np.Spec.Ingress) != 0 || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("%s: policy types %v with %d ingress rules, want all ingress denied", name, np.Spec.PolicyTypes, len(np.Spec.Ingress))
		}
		var except []string
		dns := false
		for _, rule := range np.Spec.Egress {
			for _, peer := range rule.To {
				if peer.IPBlock != nil && peer.IPBlock.CIDR == "0.0.0.0/0" {
					except = peer.IPBlock.Except
				}
				if peer.PodSelector != nil && peer.PodSelector.MatchLabels["k8s-app"] == "kube-dns" && len(rule.Ports) == 2 {
					dns = rule.Ports[0].Port.IntValue() == 53 && rule.Ports[1].Port.IntValue() == 53
				}
			}
		}
		// The IPv4 ranges the service refuses to reach on a user's behalf
		// (repoproviders/netguard.go), but the rest of 169.254.0.0/16 (kept
		// open for node-local DNS caches).
		for _, cidr := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.169.254/32",
			"0.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
			"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"} {
			if !slices.Contains(except, cidr) {
				t.Errorf("%s: egress to 0.0.0.0/0 excepts %v, want %s among them", name, except, cidr)
			}
		}
		if !dns {
			t.Errorf("%s: no egress rule for DNS (port 53) to kube-dns", name)
		}
	}
	if n := count[*networkingv1.NetworkPolicy](mustRender(t, "--set", "networkPolicy.enabled=false")); n != 0 {
		t.Errorf("networkPolicy.enabled=false renders %d NetworkPolicies, want 0", n)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	objs := mustRender(t, "--set", "fullnameOverride=null", "--set", "nameOverride=builds")
	for _, name := range []string{"binderbuild-builds-binderhub", "binderbuild-builds-docker-api", "binderbuild-builds-build-pods-docker-config"} {
		found := false
		for _, o := range objs {
			if n, ok := o.(namedObject); ok && n.GetName() == name {
				found = true
			}
		}
		if !found {
			t.Errorf("no object named %s with fullnameOverride null and nameOverride builds", name)
		}
	}
	dep := mustFind[*appsv1.Deployment](t, objs, "binderbuild-builds-binderhub")
	if got := dep.Spec.Selector.MatchLabels["app.kubernetes.io/name"]; got != "builds" {
		t.Errorf("selector app.kubernetes.io/name = %q, want builds", got)
	}
	if got, want := plainEnv(dep.Spec.Template.Spec.Containers[0])["PUSH_SECRET_NAME"], "binderbuild-builds-build-pods-docker-config"; got != want {
		t.Errorf("PUSH_SECRET_NAME = %q, want %q", got, want)
	}
}

func TestGC(t *testing.T) {
	t.Parallel()
	if n := count[*batchv1.CronJob](mustRender(t)); n != 0 {
		t.Errorf("default render has %d CronJobs, want 0 (gc is off by default)", n)
	}
	objs := mustRender(t, "--values", writeValues(t, `
config:
  BinderHub: {image_prefix: "quay.io/org/hub-"}
  DockerRegistry: {url: "http://registry.local:5000"}
gc: {enabled: true, schedule: "@weekly", maxAge: 30d, keep: 0, patterns: [ci-2drepos, test]}
`))
	cj := mustFind[*batchv1.CronJob](t, objs, "binderhub-gc")
	if cj.Spec.Schedule != "@weekly" {
		t.Errorf("schedule = %q, want @weekly", cj.Spec.Schedule)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	if pod.ServiceAccountName != "binderhub" {
		t.Errorf("serviceAccountName = %q, want binderhub (its Role lets --protect-running list pods)", pod.ServiceAccountName)
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"gc"}) {
		t.Errorf("args = %q, want [gc]", c.Args)
	}
	env := plainEnv(c)
	for name, want := range map[string]string{
		"BINDERBUILD_IMAGE_PREFIX":            "quay.io/org/hub-",
		"BINDERBUILD_REGISTRY_INSECURE_HOSTS": "registry.local:5000",
		"BINDERBUILD_GC_MAX_AGE":              "30d",
		"BINDERBUILD_GC_KEEP":                 "0",
		"BINDERBUILD_GC_PATTERNS":             "ci-2drepos,test",
		"BINDERBUILD_GC_PROTECT_RUNNING":      "true",
		// A dry run unless gc.delete is set.
		"BINDERBUILD_GC_DELETE":    "false",
		"BINDERBUILD_GC_NAMESPACE": "<from field metadata.namespace>",
		"DOCKER_CONFIG":            "/etc/binderhub/docker",
	} {
		if env[name] != want {
			t.Errorf("env %s = %q, want %q", name, env[name], want)
		}
	}
}
