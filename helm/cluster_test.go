package helm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/internal/race"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testhub"
	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// warnings collects the warnings kube-apiserver answers with.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// TestCluster runs the chart against a real kube-apiserver (with
// kube-scheduler and kwok nodes): every rendered manifest is created,
// `helm install` succeeds, and `binderbuild serve` started with the
// environment the chart renders accepts every setting and creates build pods
// that land where docker-api runs.
func TestCluster(t *testing.T) {
	c := testcluster.StartT(t)

	t.Run("create", func(t *testing.T) {
		// Allowed warnings per values file; any other warning fails.
		allowed := map[string]*regexp.Regexp{
			// Upstream's lint values set HELM_RELEASE_NAME in extraEnv too.
			"binderhub-service-lint": regexp.MustCompile(`hides previous definition of "HELM_RELEASE_NAME"`),
		}
		for _, tc := range valuesCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ns := c.NewNamespace(t.Context(), t)
				out, err := render(t, testRelease, ns, tc.args()...)
				if err != nil {
					t.Fatal(err)
				}
				for _, w := range createAll(t, c.RestConfig(), ns, out) {
					if re := allowed[tc.name]; re == nil || !re.MatchString(w) {
						t.Errorf("kube-apiserver warning: %s", w)
					}
				}
			})
		}
	})

	t.Run("helm install", func(t *testing.T) {
		tests := []struct {
			values string
			set    []string // the keys to change (TestCorpus)
			// notes are substrings of NOTES.txt; nil means it has no warnings.
			notes []string
		}{
			{"testdata/values/2i2c.yaml", nil, nil},
			{"testdata/values/2i2c.yaml", []string{"config.BinderHub.enable_api_only_mode=false", "config.BinderHub.hub_url=https://hub.example.org/"}, []string{
				"Launch mode:     servers start on JupyterHub at https://hub.example.org/; launch links /services/binder/v2/<provider>/<spec>",
			}},
			{"testdata/values/binderhub-service-install-guide.yaml", []string{"config.BinderHub.enable_api_only_mode=true"}, []string{
				"WARNINGS", "Anyone who can reach the service can build images",
				"docker-api keeps images in a hostPath",
			}},
		}
		for _, tc := range tests {
			t.Run(strings.TrimSpace(filepath.Base(tc.values)+" "+strings.Join(tc.set, " ")), func(t *testing.T) {
				t.Parallel()
				ns := c.NewNamespace(t.Context(), t)
				args := []string{"install", testRelease, chartDir,
					"--kubeconfig", c.KubeconfigPath(), "--namespace", ns, "--wait=false",
					"--values", filepath.Join(chartDir, tc.values)}
				for _, s := range tc.set {
					args = append(args, "--set", s)
				}
				out, err := runHelm(t, args...)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out, "STATUS: deployed") {
					t.Errorf("helm install output lacks STATUS: deployed:\n%s", out)
				}
				if tc.notes == nil && strings.Contains(out, "WARNINGS") {
					t.Errorf("helm install printed warnings, want none:\n%s", out)
				}
				for _, want := range tc.notes {
					if !strings.Contains(out, want) {
						t.Errorf("helm install output lacks %q:\n%s", want, out)
					}
				}
				status, err := runHelm(t, "status", testRelease, "--kubeconfig", c.KubeconfigPath(), "--namespace", ns, "--output", "json")
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(status, `"status":"deployed"`) {
					t.Errorf("helm status = %s, want deployed", status)
				}
				apps := c.Client().AppsV1()
				if _, err := apps.Deployments(ns).Get(t.Context(), "binderhub", metav1.GetOptions{}); err != nil {
					t.Errorf("after helm install: %v", err)
				}
				if _, err := apps.DaemonSets(ns).Get(t.Context(), "docker-api", metav1.GetOptions{}); err != nil {
					t.Errorf("after helm install: %v", err)
				}
			})
		}
	})

	bin := buildServer(t)

	t.Run("serve accepts every setting", func(t *testing.T) {
		// Every value set, translated by the chart, parsed by the server.
		ns := c.NewNamespace(t.Context(), t)
		out, err := render(t, testRelease, ns, "--values", filepath.Join(chartDir, "testdata", "values", "everything.yaml"),
			"--set", "service.nodePort=30082") // 30081 is taken by the create test
		if err != nil {
			t.Fatal(err)
		}
		createAll(t, c.RestConfig(), ns, out)
		startServer(t.Context(), t, c, bin, ns, "binderbuild-builds-binderhub")
	})

	t.Run("build pods follow docker-api", func(t *testing.T) {
		testBuildPods(t, c, bin)
	})

	t.Run("corpus", func(t *testing.T) {
		testCorpus(t, c, bin)
	})

	t.Run("launch mode with a real hub", func(t *testing.T) {
		testLaunch(t, c, bin)
	})
}

// testLaunch renders launch mode for a real JupyterHub, as the chart README
// tells, with nothing but BinderHub's values: the server started with the
// render's environment takes the service's token from the hub's Secret and
// launches a server through the hub, which answers with the token.
func testLaunch(t *testing.T, c *testcluster.Cluster, bin string) {
	hub := testhub.Start(t, testhub.Options{})
	ns := c.NewNamespace(t.Context(), t)
	const sha = "89abcdef0123456789abcdef0123456789abcdef"
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"sha": %q}`, sha)
	}))
	t.Cleanup(gh.Close)
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close) // after the server stops
	prefix := strings.TrimPrefix(reg.URL, "http://") + "/binder-"
	image := binderbuild.ImageName(prefix, "org-repo", sha)
	testregistry.Push(t, image)
	apiURL, _ := url.Parse(hub.APIURL)
	out, err := render(t, testRelease, ns, "--values", writeValues(t, fmt.Sprintf(`config:
  BinderHub:
    enable_api_only_mode: false
    hub_url: %s
    hub_url_local: http://%s/
    image_prefix: %s
extraEnv:
  - name: BINDERBUILD_GITHUB_API_URL
    value: %s
`, hub.URL, apiURL.Host, prefix, gh.URL)))
	if err != nil {
		t.Fatal(err)
	}
	// z2jh's Secret with the token it generated for hub.services.binder.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hub"}, StringData: map[string]string{"hub.services.binder.apiToken": hub.Token}}
	if _, err := c.Client().CoreV1().Secrets(ns).Create(t.Context(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createAll(t, c.RestConfig(), ns, out)
	base := startServer(t.Context(), t, c, bin, ns, "binderhub")

	events := getEvents(t.Context(), t, base+"build/gh/org/repo/HEAD")
	var ready struct{ Phase, URL, Token, Image string }
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		text := events.String()
		i := strings.LastIndex(text, "data: ")
		if i < 0 {
			return false, nil
		}
		last, _, _ := strings.Cut(text[i+len("data: "):], "\n")
		if json.Unmarshal([]byte(last), &ready) != nil {
			return false, nil
		}
		return ready.Phase == "ready" || ready.Phase == "failed", nil
	})
	if err != nil || ready.Phase != "ready" || !strings.HasPrefix(ready.URL, hub.URL+"user/org-repo-") || ready.Image != image {
		t.Fatalf("launch ended with %+v (%v), want ready at %suser/org-repo-<8>/ with %s; events:\n%s", ready, err, hub.URL, image, events.String())
	}
	if status := testhub.ServerStatus(t, ready.URL, ready.Token); status != http.StatusOK {
		t.Errorf("GET %sapi/status with the launch's token = %d, want 200", ready.URL, status)
	}
}

// testCorpus renders every deployment of the corpus (changed where it is
// refused, see TestCorpus), passes each render through a server-side dry
// run with strict field validation, then creates it and checks that
// `binderbuild serve`, started with the environment it gives the server,
// answers /versions.
func testCorpus(t *testing.T, c *testcluster.Cluster, bin string) {
	// Allowed warnings per case; any other warning fails.
	allowed := regexp.MustCompile(`hides previous definition of "(HELM_RELEASE_NAME|JUPYTERHUB_API_URL)"`)
	for i, cc := range corpusCases(t) {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			if get(cc.effectiveValues(t), "service.nodePort") != nil {
				// Node ports are cluster-wide: the create test took this one.
				cc.set = append(slices.Clone(cc.set), fmt.Sprintf("service.nodePort=%d", 30090+i))
			}
			ns := c.NewNamespace(t.Context(), t)
			out := cc.mustRenderChanged(t, ns)
			for _, w := range dryRunAll(t, c.RestConfig(), ns, out) {
				if !allowed.MatchString(w) {
					t.Errorf("kube-apiserver warning: %s", w)
				}
			}
			// The hub's Secret that 2i2c's values take the hub's API token from.
			hub := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hub"}, StringData: map[string]string{"hub.services.binder.apiToken": "hub-token"}}
			if _, err := c.Client().CoreV1().Secrets(ns).Create(t.Context(), hub, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			createAll(t, c.RestConfig(), ns, out)
			base := startServer(t.Context(), t, c, bin, ns, "binderhub")
			checkPages(t, base, cc.effectiveValues(t))
		})
	}
}

// checkPages checks that a server in launch mode serves the launch pages
// with the values' banner, and one in API-only mode does not.
func checkPages(t *testing.T, base string, v map[string]any) {
	t.Helper()
	launch := get(v, "config.BinderHub.enable_api_only_mode") == false
	resp, err := http.Get(base + "v2/gh/binder-examples/requirements/HEAD")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[launch]; resp.StatusCode != want {
		t.Fatalf("GET %sv2/gh/binder-examples/requirements/HEAD = %s, want %d (launch mode: %v)", base, resp.Status, want, launch)
	}
	if banner := str(get(v, "config.BinderHub.banner_message")); launch && !strings.Contains(string(body), `<div id="banner" class="banner">`+banner+`</div>`) {
		t.Errorf("the launch page lacks the banner %q", banner)
	}
}

// createAll creates every object of a render in namespace ns with strict
// field validation (unknown or duplicate fields are errors) and returns the
// server's warnings.
func createAll(t *testing.T, cfg *rest.Config, ns, manifest string) []string {
	t.Helper()
	return create(t, cfg, ns, manifest, metav1.CreateOptions{FieldValidation: "Strict"})
}

// dryRunAll is createAll as a server-side dry run: validated and admitted,
// not stored.
func dryRunAll(t *testing.T, cfg *rest.Config, ns, manifest string) []string {
	t.Helper()
	return create(t, cfg, ns, manifest, metav1.CreateOptions{FieldValidation: "Strict", DryRun: []string{metav1.DryRunAll}})
}

func create(t *testing.T, cfg *rest.Config, ns, manifest string, opts metav1.CreateOptions) []string {
	t.Helper()
	w := &warnings{}
	cfg.WarningHandler = w
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	docs := documents(t, manifest)
	if len(docs) == 0 {
		t.Fatal("the render is empty")
	}
	for _, doc := range docs {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(doc); err != nil {
			t.Fatalf("decode %s: %v", doc, err)
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s %s: %v", gvk.Kind, u.GetName(), err)
			continue
		}
		into := ns
		if other := u.GetNamespace(); other != "" && other != ns && m.Scope.Name() == meta.RESTScopeNameNamespace {
			// The Role of a build namespace other than the release's: parallel
			// renders of the same values share that namespace and its objects.
			into = other
			ensureNamespace(t, cfg, other)
		}
		_, err = dyn.Resource(m.Resource).Namespace(into).Create(t.Context(), u, opts)
		if err != nil && !(into != ns && apierrors.IsAlreadyExists(err)) {
			t.Errorf("create %s %s: %v", gvk.Kind, u.GetName(), err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.list
}

// ensureNamespace creates namespace ns unless it exists.
func ensureNamespace(t *testing.T, cfg *rest.Config, ns string) {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
}

// testBuildPods creates the chart's objects, runs `binderbuild serve` with
// the environment the chart gives the server (and a kubeconfig for the test
// cluster), asks it for a build and checks the build pod it creates: it
// carries docker-api's node selector (so the scheduler puts it on a
// docker-api node), mounts docker-api's socket, and has the configured
// ephemeral-storage request and limit.
func testBuildPods(t *testing.T, c *testcluster.Cluster, bin string) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ns := c.NewNamespace(ctx, t)
	userNodes := map[string]string{"hub.jupyter.org/node-purpose": "user"}
	if err := c.AddNode(ctx, ns+"-user", userNodes, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.AddNode(ctx, ns+"-core", map[string]string{"hub.jupyter.org/node-purpose": "core"}, nil); err != nil {
		t.Fatal(err)
	}
	// An empty registry, so the image is not built yet.
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close) // after the server stops
	out, err := render(t, testRelease, ns,
		"--values", filepath.Join(chartDir, "examples", "google-artifact-registry.yaml"),
		"--set", "config.BinderHub.image_prefix="+strings.TrimPrefix(reg.URL, "http://")+"/binder-",
		"--set", "config.BinderHub.auth_enabled=false", // no JupyterHub here
		"--set", "buildPods.ephemeralStorage.request=3Gi", "--set", "buildPods.ephemeralStorage.limit=12Gi")
	if err != nil {
		t.Fatal(err)
	}
	createAll(t, c.RestConfig(), ns, out)
	ds, err := c.Client().AppsV1().DaemonSets(ns).Get(ctx, "docker-api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.Spec.Template.Spec.NodeSelector; !maps.Equal(got, userNodes) {
		t.Fatalf("docker-api node selector = %v, want %v", got, userNodes)
	}

	base := startServer(ctx, t, c, bin, ns, "binderhub")
	// A git spec with a full commit sha needs no git server.
	const sha = "0123456789abcdef0123456789abcdef01234567"
	spec := "git/" + url.PathEscape("https://github.com/binderhub-ci-repos/cached-minimal-dockerfile") + "/" + sha
	stream := getEvents(ctx, t, base+"build/"+spec+"?build_only=true")

	var pod *corev1.Pod
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "component=binderhub-build"})
		if err != nil || len(pods.Items) == 0 {
			return false, nil
		}
		pod = &pods.Items[0]
		return pod.Spec.NodeName != "", nil
	})
	if err != nil {
		t.Fatalf("no build pod created and scheduled: %v\nlast seen: %+v\nevents:\n%s", err, pod, stream.String())
	}

	if got, want := pod.Spec.NodeSelector, ds.Spec.Template.Spec.NodeSelector; !maps.Equal(got, want) {
		t.Errorf("build pod node selector = %v, want docker-api's %v", got, want)
	}
	if got, want := pod.Spec.NodeName, ns+"-user"; got != want {
		t.Errorf("build pod scheduled on %s, want the docker-api node %s", got, want)
	}
	sock := dockerAPISocket(t, ds)
	var hostPath *corev1.HostPathVolumeSource
	for _, v := range pod.Spec.Volumes {
		if v.Name == "docker-socket" {
			hostPath = v.HostPath
		}
	}
	if hostPath == nil || hostPath.Path != sock || hostPath.Type == nil || *hostPath.Type != corev1.HostPathSocket {
		t.Errorf("build pod docker-socket volume = %+v, want hostPath %s of type Socket", hostPath, sock)
	}
	res := pod.Spec.Containers[0].Resources
	for _, q := range []struct {
		what      string
		got, want resource.Quantity
	}{
		{"request", res.Requests[corev1.ResourceEphemeralStorage], resource.MustParse("3Gi")},
		{"limit", res.Limits[corev1.ResourceEphemeralStorage], resource.MustParse("12Gi")},
	} {
		if q.got.Cmp(q.want) != 0 {
			t.Errorf("build pod ephemeral-storage %s = %s, want %s", q.what, q.got.String(), q.want.String())
		}
	}
}

// buildServer builds the binderbuild command.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "binderbuild")
	args := []string{"build", "-o", bin}
	if race.Enabled {
		args = append(args, "-race") // its packages are compiled already
	}
	build := exec.CommandContext(t.Context(), "go", append(args, "github.com/binderbuild/binderbuild/cmd/binderbuild")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build binderbuild: %v\n%s", err, out)
	}
	return bin
}

// startServer starts bin (`binderbuild serve`) with the environment of the
// container of the Deployment named deployment in namespace ns, as the API
// server stored it: field references become the namespace, secret
// references the Secrets' values, the docker config is the one the pod
// mounts, it listens on a free loopback port and reaches the test cluster
// through KUBECONFIG. It returns the server's base URL (with base_url) once
// /versions answers; the server is stopped (SIGTERM, by its pid) when the
// test ends.
func startServer(ctx context.Context, t *testing.T, c *testcluster.Cluster, bin, ns, deployment string) string {
	t.Helper()
	dep, err := c.Client().AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secretData := func(name, key string) []byte {
		t.Helper()
		s, err := c.Client().CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The API server keeps stringData as data.
		return s.Data[key]
	}
	dir := t.TempDir()
	dockerConfig := filepath.Join(dir, "docker")
	if err := os.Mkdir(dockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "docker-config" {
			data := secretData(v.Secret.SecretName, v.Secret.Items[0].Key)
			if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	env := []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "KUBECONFIG=" + c.KubeconfigPath()}
	baseURL := "/"
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		v := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			v = ns
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			v = string(secretData(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key))
		case e.ValueFrom != nil:
			t.Fatalf("env %s: unexpected valueFrom %+v", e.Name, e.ValueFrom)
		case e.Name == "BINDERBUILD_LISTEN":
			v = addr
		case e.Name == "DOCKER_CONFIG":
			v = dockerConfig
		case e.Name == "BINDERBUILD_BASE_URL":
			baseURL = v
		case e.Name == "JUPYTERHUB_API_URL":
			// Tests reach loopback only: a closed port stands for the hub.
			v = "http://127.0.0.1:1/hub/api"
		case (e.Name == "BINDERBUILD_HUB_URL" || e.Name == "BINDERBUILD_HUB_URL_LOCAL") && !strings.HasPrefix(v, "http://127.0.0.1:"):
			v = "http://127.0.0.1:1/" // a hub elsewhere, as JUPYTERHUB_API_URL
		}
		env = append(env, e.Name+"="+v)
	}
	// The git specs of these tests name github.com: allowed, so its address
	// is never looked up (tests send traffic to loopback only).
	env = append(env, "BINDERBUILD_GIT_ALLOWED_HOSTS=github.com")
	var output bytes.Buffer
	srv := exec.Command(bin, "serve")
	srv.Env = env
	srv.Stdout, srv.Stderr = &output, &output
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("binderbuild serve output:\n%s", output.String())
		}
	})

	base := "http://" + addr + baseURL
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return false, fmt.Errorf("binderbuild serve exited: %v", err)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"versions", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("binderbuild serve did not answer %sversions: %v\n%s", base, err, output.String())
	}
	return base
}

// eventStream collects the lines of an event stream as they arrive.
type eventStream struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{} // closed when the stream ended
}

// all waits for the end of the stream and returns its lines.
func (s *eventStream) all() []string {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines
}

func (s *eventStream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// getEvents opens the event stream at url and reads it in the background
// until the test ends.
func getEvents(ctx context.Context, t *testing.T, url string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &eventStream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-s.done
	})
	return s
}

// dockerAPISocket is the socket path docker-api listens on (its --host).
func dockerAPISocket(t *testing.T, ds *appsv1.DaemonSet) string {
	t.Helper()
	for _, arg := range ds.Spec.Template.Spec.Containers[0].Args {
		if s, ok := strings.CutPrefix(arg, "--host=unix://"); ok {
			return s
		}
	}
	t.Fatalf("docker-api args %q have no --host=unix://", ds.Spec.Template.Spec.Containers[0].Args)
	return ""
}
