package helm

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// The corpus: real deployments' values (testdata/corpus/README.md names
// their sources), rendered the way they are deployed.
const (
	corpusDir = "testdata/corpus"
	// alias is the key parent charts give binderhub-service.
	alias = "binderhub-service"
)

// corpusCase is one deployment's values, rendered as the binderhub-service
// subchart of the stub parent (parent) or as the top-level chart.
type corpusCase struct {
	name   string
	file   string // under helm/
	parent bool
	// set are the --set arguments the source's own CI adds (keys as in the
	// values file, without the alias).
	set []string
	// refused are the keys the render must fail naming; nil: it renders
	// unchanged.
	refused []string
	// change sets the refused keys to what the messages ask, as --set
	// arguments (keys without the alias); the changed values must render.
	change []string
}

// launchHubs are 2i2c's hubs that run BinderHub's own pages (launch mode),
// with the keys their render is refused for: all but one send launch events
// to 2i2c's Google Cloud Logging through the parent's extraConfig snippet,
// for which binderbuild has no sink.
var launchHubs = map[string][]string{
	"earthscope.binder":              {"custom.sendLogsOfLaunchEventsTo2i2c"},
	"hhmi.binder":                    {"custom.sendLogsOfLaunchEventsTo2i2c"},
	"nasa-ghg-hub.binder":            {"custom.sendLogsOfLaunchEventsTo2i2c"},
	"nasa-veda.binder":               {"custom.sendLogsOfLaunchEventsTo2i2c"},
	"opensci.big-binder":             {"custom.sendLogsOfLaunchEventsTo2i2c"},
	"opensci.small-binder":           {"custom.sendLogsOfLaunchEventsTo2i2c"},
	"projectpythia-binder.binderhub": nil,
	"projectpythia.pythia-binder":    {"custom.sendLogsOfLaunchEventsTo2i2c"},
}

// changes are the --set arguments that do what the refusals of keys ask.
var changes = map[string]string{
	"custom.sendLogsOfLaunchEventsTo2i2c": "custom.sendLogsOfLaunchEventsTo2i2c=false",
}

// ciRegistry stands for the CI job's $LOCAL_REGISTRY_HOST.
const ciRegistry = "127.0.0.1:5000"

// corpusCases lists every file of the corpus: each 2i2c hub as a subchart
// of basehub, binderhub-service's own values files top-level and as a
// subchart.
func corpusCases(t testing.TB) []corpusCase {
	t.Helper()
	hubs, err := filepath.Glob(filepath.Join(corpusDir, "2i2c", "*.yaml"))
	if err != nil || len(hubs) == 0 {
		t.Fatalf("no 2i2c hub values under %s: %v", corpusDir, err)
	}
	var cases []corpusCase
	for _, f := range hubs {
		c := corpusCase{name: "2i2c/" + strings.TrimSuffix(filepath.Base(f), ".yaml"), file: f, parent: true}
		c.refused = launchHubs[strings.TrimPrefix(c.name, "2i2c/")]
		for _, k := range c.refused {
			c.change = append(c.change, changes[k])
		}
		cases = append(cases, c)
	}
	values := filepath.Join(chartDir, "testdata", "values")
	for _, parent := range []bool{false, true} {
		mode := "top-level"
		if parent {
			mode = "subchart"
		}
		cases = append(cases,
			corpusCase{name: "binderhub-service-ci/" + mode, file: filepath.Join(values, "binderhub-service-ci.yaml"), parent: parent,
				set: []string{
					"config.BinderHub.image_prefix=" + ciRegistry + "/binderhub-service/",
					"config.DockerRegistry.url=http://" + ciRegistry,
					"buildPodsRegistryCredentials.server=http://" + ciRegistry,
					"dockerApi.extraFiles.daemon-json.data.insecure-registries[0]=" + ciRegistry,
				}},
			corpusCase{name: "binderhub-service-lint/" + mode, file: filepath.Join(values, "binderhub-service-lint.yaml"), parent: parent,
				// A lint file, not a deployment: it has no image_prefix either.
				refused: []string{"config.BinderHub.image_prefix", "image.repository"},
				change:  []string{"image.repository=ghcr.io/binderbuild/binderbuild", "image.tag=", "config.BinderHub.image_prefix=quay.io/dummy/binder-"}},
			corpusCase{name: "binderhub-service-install-guide/" + mode, file: filepath.Join(values, "binderhub-service-install-guide.yaml"), parent: parent,
				// The tutorial tries builds in launch mode without a hub.
				refused: []string{"config.BinderHub.hub_url"}, change: []string{"config.BinderHub.enable_api_only_mode=true"}})
	}
	return cases
}

// parentChart returns a copy of the stub parent chart with binderbuild as
// its binderhub-service dependency in charts/.
func parentChart(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "basehub")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(corpusDir, "parent"))); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "charts", "binderbuild"), os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// valuesFile is the case's values as the chart it is rendered with takes
// them: binderhub-service's files go under the alias in the parent, with
// enabled: true (the parent's condition).
func (c corpusCase) valuesFile(t testing.TB) string {
	t.Helper()
	if !c.parent || strings.HasPrefix(c.name, "2i2c/") {
		return c.file
	}
	v := readValues(t, c.file)
	v["enabled"] = true
	b, err := yaml.Marshal(map[string]any{alias: v})
	if err != nil {
		t.Fatal(err)
	}
	return writeValues(t, string(b))
}

// args are helm's --values and --set arguments, with change when changed.
func (c corpusCase) args(t testing.TB, changed bool) []string {
	t.Helper()
	args := []string{"--values", c.valuesFile(t)}
	sets := c.set
	if changed {
		sets = append(slices.Clone(sets), c.change...)
	}
	for _, s := range sets {
		if c.parent {
			s = alias + "." + s
		}
		args = append(args, "--set", s)
	}
	return args
}

// render renders the case in namespace ns.
func (c corpusCase) render(t testing.TB, ns string, changed bool) (string, error) {
	t.Helper()
	chart := chartDir
	if c.parent {
		chart = parentChart(t)
	}
	return runHelm(t, append([]string{"template", testRelease, chart, "--namespace", ns}, c.args(t, changed)...)...)
}

// mustRenderChanged renders the case with its changes, after checking that
// the unchanged values render or fail naming exactly the refused keys.
func (c corpusCase) mustRenderChanged(t testing.TB, ns string) string {
	t.Helper()
	out, err := c.render(t, ns, false)
	var refused []string
	if err != nil {
		refused = refusedKeys(err.Error())
		if len(refused) == 0 {
			t.Fatalf("render failed without naming a key: %v", err)
		}
	}
	want := slices.Clone(c.refused)
	for i, k := range want {
		if c.parent {
			want[i] = alias + "." + k
		}
	}
	if !slices.Equal(refused, want) {
		t.Fatalf("render refused %q, want %q\n%v", refused, want, err)
	}
	if err == nil {
		return out
	}
	out, err = c.render(t, ns, true)
	if err != nil {
		t.Fatalf("after changing %q: %v", c.change, err)
	}
	return out
}

// refusedKeys are the keys of the "- <key>: <message>" lines of a refusal.
func refusedKeys(msg string) []string {
	var keys []string
	for line := range strings.SplitSeq(msg, "\n") {
		if k, _, ok := strings.Cut(strings.TrimPrefix(line, "- "), ": "); ok && strings.HasPrefix(line, "- ") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func readValues(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]any{}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// effectiveValues are the values the chart sees, computed without the
// chart: the parent's defaults under the alias (in the parent), then the
// file's, then the --set changes, maps merged, null deleting a key. The
// intent checks compare the render with them.
func (c corpusCase) effectiveValues(t testing.TB) map[string]any {
	t.Helper()
	v := map[string]any{}
	if c.parent {
		v = readValues(t, filepath.Join(corpusDir, "parent", "values.yaml"))[alias].(map[string]any)
	}
	file := readValues(t, c.file)
	if strings.HasPrefix(c.name, "2i2c/") {
		file = file[alias].(map[string]any)
	}
	v = merge(v, file)
	for _, s := range append(slices.Clone(c.set), c.change...) {
		key, value, _ := strings.Cut(s, "=")
		if strings.Contains(key, "[") {
			continue // dockerApi.extraFiles: not part of the intent
		}
		var leaf any = value
		switch value {
		case "null":
			leaf = nil
		case "true", "false":
			leaf = value == "true"
		}
		parts := strings.Split(key, ".")
		for i := len(parts) - 1; i >= 0; i-- {
			leaf = map[string]any{parts[i]: leaf}
		}
		v = merge(v, leaf.(map[string]any))
	}
	return v
}

// merge merges b over a as Helm merges values: maps recursively, null
// deleting the key.
func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	maps.Copy(out, a)
	for k, bv := range b {
		switch bm, ok := bv.(map[string]any); {
		case bv == nil:
			delete(out, k)
		case ok:
			am, _ := out[k].(map[string]any)
			out[k] = merge(am, bm)
		default:
			out[k] = bv
		}
	}
	return out
}

// get returns the value at a dotted path, nil when missing.
func get(v map[string]any, path string) any {
	var cur any = v
	for k := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// labels is a node selector of the values, without null labels.
func labels(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, l := range m {
		if l != nil {
			out[k] = str(l)
		}
	}
	return out
}

// TestCorpus renders every deployment of the corpus, checks that it renders
// unchanged or fails naming exactly its keys to change, and that the render
// carries the deployment's intent.
func TestCorpus(t *testing.T) {
	t.Parallel()
	for _, c := range corpusCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			objs := decode(t, c.mustRenderChanged(t, testNS))
			checkIntent(t, objs, c.effectiveValues(t))
		})
	}
}

// checkIntent compares a render with the values it was made from: image
// prefix, push credentials, build node selector, docker-api storage and
// tolerations, base URL and hub wiring.
func checkIntent(t *testing.T, objs objects, v map[string]any) {
	t.Helper()
	env := serverEnv(t, objs)
	if got, want := env["BINDERBUILD_IMAGE_PREFIX"], str(get(v, "config.BinderHub.image_prefix")); got != want || want == "" {
		t.Errorf("BINDERBUILD_IMAGE_PREFIX = %q, want the values' image_prefix %q", got, want)
	}

	// Push credentials: the build pods' docker config has the registry's;
	// an anonymous registry (no username) has no entry, which Docker and
	// go-containerregistry would refuse.
	if get(v, "config.BinderHub.use_registry") != false {
		secret := mustFind[*corev1.Secret](t, objs, "build-pods-docker-config")
		var cfg struct {
			Auths map[string]struct{ Auth string } `json:"auths"`
		}
		if err := json.Unmarshal([]byte(secret.StringData["config.json"]), &cfg); err != nil {
			t.Fatal(err)
		}
		server, user := str(get(v, "buildPodsRegistryCredentials.server")), str(get(v, "buildPodsRegistryCredentials.username"))
		want := base64.StdEncoding.EncodeToString([]byte(user + ":" + str(get(v, "buildPodsRegistryCredentials.password"))))
		got, ok := cfg.Auths[server]
		switch {
		case user == "" && ok:
			t.Errorf("build pods' docker config has an entry %q = %+v without a username, want none", server, got)
		case user != "" && got.Auth != want:
			t.Errorf("build pods' docker config auth of %q = %q, want %q", server, got.Auth, want)
		}
	}

	// Build pods go where docker-api runs, with the values' labels.
	ds := mustFind[*appsv1.DaemonSet](t, objs, "docker-api")
	build := parseKV(env["BINDERBUILD_BUILD_NODE_SELECTOR"])
	if !maps.Equal(build, ds.Spec.Template.Spec.NodeSelector) {
		t.Errorf("build pods' node selector %v != docker-api's %v", build, ds.Spec.Template.Spec.NodeSelector)
	}
	want := labels(get(v, "config.KubernetesBuildExecutor.node_selector"))
	if len(want) == 0 {
		want = labels(get(v, "dockerApi.nodeSelector"))
	}
	if !maps.Equal(build, want) {
		t.Errorf("build pods' node selector = %v, want the values' %v", build, want)
	}
	if got, want := ds.Spec.Template.Spec.NodeSelector, labels(get(v, "dockerApi.nodeSelector")); len(got)+len(want) > 0 && !maps.Equal(got, want) {
		t.Errorf("docker-api node selector = %v, want %v", got, want)
	}

	// docker-api storage and tolerations.
	var tolerations []corev1.Toleration
	if b, err := json.Marshal(get(v, "dockerApi.tolerations")); err == nil {
		_ = json.Unmarshal(b, &tolerations)
	}
	tolerations = append(buildPodTolerations(tolerations), tolerations...)
	if got := ds.Spec.Template.Spec.Tolerations; !slices.EqualFunc(got, tolerations, func(a, b corev1.Toleration) bool { return a.MatchToleration(&b) }) {
		t.Errorf("docker-api tolerations = %+v, want %+v", got, tolerations)
	}
	var data corev1.VolumeSource
	for _, vol := range ds.Spec.Template.Spec.Volumes {
		if vol.Name == "data" {
			data = vol.VolumeSource
		}
	}
	switch size := str(get(v, "dockerApi.storage.emptyDir.sizeLimit")); {
	case size != "":
		if data.EmptyDir == nil || data.EmptyDir.SizeLimit == nil || data.EmptyDir.SizeLimit.Cmp(resource.MustParse(size)) != 0 {
			t.Errorf("docker-api data volume = %+v, want emptyDir with sizeLimit %s", data, size)
		}
	case data.HostPath == nil:
		t.Errorf("docker-api data volume = %+v, want a hostPath", data)
	}

	// Base URL, normalised as BinderHub does.
	baseURL := "/" + strings.Trim(str(get(v, "config.BinderHub.base_url")), "/") + "/"
	if baseURL == "//" {
		baseURL = "/"
	}
	c := mustFind[*appsv1.Deployment](t, objs, "binderhub").Spec.Template.Spec.Containers[0]
	if env["BINDERBUILD_BASE_URL"] != baseURL || c.StartupProbe.HTTPGet.Path != baseURL+"versions" {
		t.Errorf("base URL %q, startup probe %q, want %q and %sversions", env["BINDERBUILD_BASE_URL"], c.StartupProbe.HTTPGet.Path, baseURL, baseURL)
	}

	// Hub wiring: authentication and the hub's API URL.
	wantAuth := "none"
	if get(v, "config.BinderHub.auth_enabled") == true {
		wantAuth = "jupyterhub"
	}
	if env["BINDERBUILD_AUTH"] != wantAuth {
		t.Errorf("BINDERBUILD_AUTH = %q, want %q", env["BINDERBUILD_AUTH"], wantAuth)
	}
	launch := get(v, "config.BinderHub.enable_api_only_mode") == false
	hubAPI, fromExtraEnv := "", map[string]bool{}
	extra, _ := get(v, "extraEnv").([]any)
	for _, e := range extra {
		m, _ := e.(map[string]any)
		fromExtraEnv[str(m["name"])] = true
		if str(m["name"]) == "JUPYTERHUB_API_URL" {
			hubAPI = str(m["value"])
		}
	}
	if hubLocal := cmp.Or(str(get(v, "config.BinderHub.hub_url_local")), str(get(v, "config.BinderHub.hub_url"))); hubAPI == "" && launch && wantAuth == "jupyterhub" && hubLocal != "" {
		hubAPI = strings.TrimSuffix(hubLocal, "/") + "/hub/api/" // as binderhub's chart
	}
	if env["JUPYTERHUB_API_URL"] != hubAPI {
		t.Errorf("JUPYTERHUB_API_URL = %q, want %q", env["JUPYTERHUB_API_URL"], hubAPI)
	}
	checkLaunchIntent(t, env, v, launch, fromExtraEnv)
}

// checkLaunchIntent checks the hub wiring of launch mode: the hub's URL,
// the service's hub API token (the hub Secret's, as binderhub's chart
// takes it, unless the values give one) and the pages' settings; in
// API-only mode none of them.
func checkLaunchIntent(t *testing.T, env map[string]string, v map[string]any, launch bool, fromExtraEnv map[string]bool) {
	t.Helper()
	wantAPIOnly := strconv.FormatBool(!launch) // the chart's default: true
	if env["BINDERBUILD_API_ONLY"] != wantAPIOnly {
		t.Errorf("BINDERBUILD_API_ONLY = %q, want %q", env["BINDERBUILD_API_ONLY"], wantAPIOnly)
	}
	for name, key := range map[string]string{"BINDERBUILD_HUB_URL": "hub_url", "BINDERBUILD_HUB_URL_LOCAL": "hub_url_local",
		"BINDERBUILD_BADGE_BASE_URL": "badge_base_url", "BINDERBUILD_BANNER_MESSAGE": "banner_message", "BINDERBUILD_ABOUT_MESSAGE": "about_message"} {
		want := ""
		if launch {
			want = str(get(v, "config.BinderHub."+key))
		}
		if env[name] != want {
			t.Errorf("%s = %q, want %q (config.BinderHub.%s in launch mode)", name, env[name], want, key)
		}
	}
	const hubSecret = "<from secret hub/hub.services.binder.apiToken>"
	switch {
	case !launch:
		if !fromExtraEnv["JUPYTERHUB_API_TOKEN"] && env["JUPYTERHUB_API_TOKEN"] != "" {
			t.Errorf("JUPYTERHUB_API_TOKEN = %q in API-only mode, want none", env["JUPYTERHUB_API_TOKEN"])
		}
	case get(v, "config.BinderHub.hub_api_token") != nil:
		if env["BINDERBUILD_HUB_API_TOKEN"] != "<from secret binderhub/hub-api-token>" {
			t.Errorf("BINDERBUILD_HUB_API_TOKEN = %q, want it from the chart's Secret", env["BINDERBUILD_HUB_API_TOKEN"])
		}
	case !fromExtraEnv["JUPYTERHUB_API_TOKEN"] && env["JUPYTERHUB_API_TOKEN"] != hubSecret:
		t.Errorf("JUPYTERHUB_API_TOKEN = %q, want %s as binderhub's chart", env["JUPYTERHUB_API_TOKEN"], hubSecret)
	case launch && env["JUPYTERHUB_API_TOKEN"] == "":
		t.Error("no hub API token in launch mode")
	}
}
