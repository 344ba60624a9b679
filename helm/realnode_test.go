//go:build linux

package helm

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/binderbuild/binderbuild/internal/goimage"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/internal/testregistry"
)

// Images of the real-node tests, built here and imported into the node's
// containerd; the pods never pull (pullPolicy Never or a present tag).
const (
	serviceImage     = "localhost/binderbuild/binderbuild:realnode"
	dockerdImage     = "localhost/binderbuild/dockerd:realnode"
	repo2dockerImage = "localhost/binderbuild/fake-repo2docker:realnode"
)

// realNodeName is the node every real-node test runs its pods on.
const realNodeName = "real-1"

// realNode is what the real-node tests share: a cluster with
// kube-controller-manager and one real node holding the three images, and a
// registry on the node's address, which pods reach.
type realNode struct {
	c        *testcluster.Cluster
	node     *testcluster.Node
	registry *testregistry.Registry

	mu      sync.Mutex
	runDirs []string // docker-api's hostPath socket folders, removed after the cluster
}

// startRealNode starts the cluster and the node, builds and imports the
// images meanwhile, and starts the registry.
func startRealNode(t *testing.T) *realNode {
	r := &realNode{}
	// Registered first, so it runs after the cluster stopped: the kubelet
	// creates the folders again while docker-api pods run.
	t.Cleanup(func() {
		for _, d := range r.runDirs {
			_ = os.RemoveAll(d)
		}
	})
	c := testcluster.StartWithT(t, testcluster.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	images := map[string]func(context.Context, string) (v1.Image, error){
		serviceImage:     buildServiceImage,
		dockerdImage:     func(context.Context, string) (v1.Image, error) { return buildDockerdImage() },
		repo2dockerImage: buildRepo2dockerImage,
	}
	built := make(map[string]v1.Image)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(images)+1)
	for ref, build := range images {
		wg.Go(func() {
			img, err := build(ctx, t.TempDir())
			if err != nil {
				errs <- fmt.Errorf("image %s: %w", ref, err)
				return
			}
			mu.Lock()
			built[ref] = img
			mu.Unlock()
		})
	}
	var node *testcluster.Node
	wg.Go(func() {
		var err error
		if node, err = c.AddRealNode(ctx, realNodeName); err != nil {
			errs <- fmt.Errorf("AddRealNode: %w", err)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for ref, img := range built {
		if err := node.ImportImage(ctx, ref, img); err != nil {
			t.Fatal(err)
		}
	}
	r.c, r.node = c, node
	r.registry = testregistry.Start(t, testregistry.Options{IP: node.IP()})
	return r
}

// buildServiceImage builds the service's image as `make image` does and
// reads it back from the tarball.
func buildServiceImage(ctx context.Context, dir string) (v1.Image, error) {
	tarPath := filepath.Join(dir, "binderbuild-image.tar")
	cmd := exec.CommandContext(ctx, "go", "run", "../tools/mkimage", "-tar", tarPath, "-tag", serviceImage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkimage: %w\n%s", err, out)
	}
	tag, err := name.NewTag(serviceImage)
	if err != nil {
		return nil, err
	}
	return tarball.ImageFromPath(tarPath, &tag)
}

func buildRepo2dockerImage(ctx context.Context, _ string) (v1.Image, error) {
	return goimage.Build(ctx, goimage.Options{
		Package: "github.com/binderbuild/binderbuild/helm/testdata/fake-repo2docker",
		Binary:  "/usr/local/bin/fake-repo2docker",
	})
}

// dockerdPrograms are the host's Debian docker.io programs dockerd runs:
// itself, its containerd with the runc shim, and runc.
var dockerdPrograms = []string{"/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc"}

// buildDockerdImage assembles a docker-api image from the host's dockerd
// (tools/docker-deps.sh installs it) and the shared libraries its programs
// load, without a base image.
func buildDockerdImage() (v1.Image, error) {
	paths := map[string]bool{}
	for _, p := range dockerdPrograms {
		paths[p] = true
		libs, err := sharedLibraries(p)
		if err != nil {
			return nil, err
		}
		for _, l := range libs {
			paths[l] = true
		}
	}
	files := []goimage.File{{Path: "/tmp/", Mode: 0o1777}, {Path: "/etc/docker/"}}
	for p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, goimage.File{Path: p, Data: data, Mode: 0o755})
	}
	return goimage.FromFiles(goimage.Options{
		Files: files,
		Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd:   []string{"dockerd"},
	})
}

// lddPath is a library path in ldd's output.
var lddPath = regexp.MustCompile(`(?m)^\s*(?:\S+ => )?(/\S+) \(0x`)

// sharedLibraries lists the shared libraries program loads, with the
// dynamic loader, as ldd prints them.
func sharedLibraries(program string) ([]string, error) {
	out, err := exec.Command("ldd", program).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", program, err)
	}
	var libs []string
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs, nil
}

// install installs the chart as release into a new namespace with the
// images built here, the docker-api DaemonSet on the node and the registry
// (images named <release>-...),
// the extra environment variables env of the server and helm's set
// arguments, and waits until its pods are ready. It returns the namespace.
func (r *realNode) install(t *testing.T, release string, env map[string]string, set ...string) string {
	t.Helper()
	ns := r.c.NewNamespace(t.Context(), t)
	host, port := r.node.InClusterAPIServer()
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	// No kube-proxy: the node's own route to kube-apiserver.
	env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = host, strconv.Itoa(port)
	// The specs name github.com with a full commit: never looked up.
	env["BINDERBUILD_GIT_ALLOWED_HOSTS"] = "github.com"
	var extraEnv strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&extraEnv, "  - {name: %s, value: %q}\n", k, env[k])
	}
	repo, tag := splitImage(serviceImage)
	dockerdRepo, dockerdTag := splitImage(dockerdImage)
	reg := r.registry.Host()
	values := writeValues(t, fmt.Sprintf(`image: {repository: %s, tag: %s, pullPolicy: Never}
networkPolicy: {enabled: false}
config:
  BinderHub:
    use_registry: true
    image_prefix: %s/%s-
    auth_enabled: false
  DockerRegistry: {url: "http://%s"}
  KubernetesBuildExecutor: {build_image: %s}
extraEnv:
%sdockerApi:
  image: {repository: %s, tag: %s, pullPolicy: Never}
  storage: {emptyDir: {}}
  extraArgs: [--insecure-registry=%s, --iptables=false, --ip-masq=false, --bridge=none, --storage-driver=vfs]
`, repo, tag, reg, release, reg, repo2dockerImage, extraEnv.String(), dockerdRepo, dockerdTag, reg))
	r.mu.Lock()
	r.runDirs = append(r.runDirs, filepath.Join("/var/run", ns+"-"+release))
	r.mu.Unlock()
	args := []string{"install", release, chartDir, "--namespace", ns, "--kubeconfig", r.c.KubeconfigPath(),
		"--values", values, "--wait", "--timeout", "5m"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	if out, err := runHelm(t, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			r.logPods(t, ns)
		}
	})
	return ns
}

// logPods logs the state and log of every pod in ns, for failed tests.
func (r *realNode) logPods(t *testing.T, ns string) {
	ctx := context.Background()
	pods, err := r.c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			log, _ := r.c.Client().CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, TailLines: ptr.To[int64](30)}).DoRaw(ctx)
			t.Logf("pod %s container %s: restarts %d, state %+v; log:\n%s", p.Name, c.Name, c.RestartCount, c.State, log)
		}
	}
}

// splitImage splits "repository:tag".
func splitImage(image string) (repo, tag string) {
	i := strings.LastIndex(image, ":")
	return image[:i], image[i+1:]
}

// serviceURL is the base URL of the release's Service "binderhub": the
// address of a ready endpoint of it (a pod on the node's bridge), since no
// proxy serves the Service's cluster IP here.
func (r *realNode) serviceURL(t *testing.T, ns string) (base, podIP string) {
	t.Helper()
	list, err := r.c.Client().DiscoveryV1().EndpointSlices(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=binderhub"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready && len(s.Ports) == 1 && s.Ports[0].Port != nil {
				return "http://" + net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(*s.Ports[0].Port))) + "/", e.Addresses[0]
			}
		}
	}
	t.Fatalf("service binderhub has no ready endpoint: %+v", list.Items)
	return "", ""
}

// TestRealNode installs the chart on a real node and builds through it,
// once successfully and once per failure cause the node produces for real;
// each subtest has a release of its own.
func TestRealNode(t *testing.T) {
	r := startRealNode(t)
	t.Run("parallel", func(t *testing.T) {
		t.Run("build", func(t *testing.T) {
			t.Parallel()
			testRealBuild(t, r)
		})
		t.Run("push secret created late", func(t *testing.T) {
			t.Parallel()
			testLateSecret(t, r)
		})
		t.Run("rotated log", func(t *testing.T) {
			t.Parallel()
			testRotatedLog(t, r)
		})
		for _, tc := range realFailures {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				testRealFailure(t, r, tc)
			})
		}
	})
	// Alone: the restart cuts every test's connections.
	t.Run("api server restart", func(t *testing.T) { testAPIServerRestart(t, r) })
}

// realCommit is the commit of every build of the real-node tests.
const realCommit = "0123456789abcdef0123456789abcdef01234567"

// realSpec is the build path of the repository named repo (the fake
// repo2docker acts on the name).
func realSpec(repo string) string {
	return "build/git/" + url.PathEscape("https://github.com/binderbuild-e2e/"+repo) + "/" + realCommit + "?build_only=true"
}

// realFailure is a build the node makes fail.
type realFailure struct {
	name  string
	repo  string
	env   map[string]string // of the server
	set   []string          // helm --set arguments
	setup func(t *testing.T, r *realNode, ns string)
	// want is the failed event's message; <ns> stands for the namespace.
	want string
}

var realFailures = []realFailure{
	{
		name: "oom",
		repo: "oom",
		set:  []string{"config.BinderHub.build_memory_limit=64Mi"},
		want: "Build failed: the build ran out of memory (OOMKilled, exit code 137).\nLast log lines:\n" +
			"Picked Git content provider.\nHEAD is now at " + realCommit + "\nAllocating memory until the limit\n",
	},
	{
		name: "unpullable image",
		repo: "minimal",
		set:  []string{"config.KubernetesBuildExecutor.build_image=localhost/binderbuild/absent:1"},
		want: `Build failed: the build image could not be pulled (ErrImagePull): failed to pull and unpack image "localhost/binderbuild/absent:1": ` +
			`failed to resolve reference "localhost/binderbuild/absent:1": failed to do request: Head "http://localhost/v2/binderbuild/absent/manifests/1": ` +
			"dial tcp 127.0.0.1:80: connect: connection refused\n",
	},
	{
		name: "invalid image name",
		repo: "minimal",
		set:  []string{"config.KubernetesBuildExecutor.build_image=localhost/binderbuild/Absent:1"},
		want: `Build failed: the build image could not be pulled (InvalidImageName): Failed to apply default image tag "localhost/binderbuild/Absent:1": ` +
			`couldn't parse image name "localhost/binderbuild/Absent:1": invalid reference format: repository name (binderbuild/Absent) must be lowercase` + "\n",
	},
	{
		name: "no push secret",
		repo: "minimal",
		env:  map[string]string{"BINDERBUILD_PUSH_SECRET": "absent"},
		want: `Build failed: the build pod could not mount its volumes: MountVolume.SetUp failed for volume "docker-config" : secret "absent" not found` + "\n",
	},
	{
		name: "no docker socket",
		repo: "minimal",
		// docker-api runs nowhere; build pods still go to the node.
		set: []string{"dockerApi.nodeSelector.absent=none", `config.BinderHub.build_node_selector.kubernetes\.io/hostname=` + realNodeName},
		want: `Build failed: the build pod could not mount its volumes: MountVolume.SetUp failed for volume "docker-socket" : ` +
			"hostPath type check failed: /var/run/<ns>-no-docker-socket/docker-api/docker-api.sock is not a socket file\n",
	},
	{
		name: "deadline",
		repo: "slow",
		set:  []string{"buildPods.timeout=20s"},
		// Whichever stops it first, the server's timer or the kubelet's
		// activeDeadlineSeconds.
		want: "Build failed: it took longer than the build timeout of 20s.\nLast log lines:\n" +
			"Picked Git content provider.\nHEAD is now at " + realCommit + "\nWaiting until the deadline\n",
	},
	{
		// A docker-registry Secret in place of a docker client config.
		name:  "push secret key",
		repo:  "minimal",
		env:   map[string]string{"BINDERBUILD_PUSH_SECRET": "registry-login"},
		setup: createRegistryLoginSecret,
		want: `Build failed: the build pod could not mount its volumes: MountVolume.SetUp failed for volume "docker-config" : ` +
			"references non-existent secret key: config.json\n",
	},
	{
		name:  "limit range",
		repo:  "minimal",
		set:   []string{"config.BinderHub.build_memory_limit=128Mi"},
		setup: limitMemory,
		want: `Build failed: the API server refused the build pod: pods "build-https-3a-2f-2fgithub-2ecom-2fbinderbuild-2d-e05ba1-012-de" is forbidden: ` +
			"maximum memory usage per Container is 64Mi, but limit is 128Mi\n",
	},
	{
		name:  "webhook refusal",
		repo:  "minimal",
		setup: denyBuildPods,
		want: `Build failed: the API server refused the build pod: admission webhook "deny.binderbuild.test" denied the request: ` +
			"build pods need an approved ticket\n",
	},
	{
		// A policy adds proxy settings from a Secret the namespace lacks.
		name:  "container config error",
		repo:  "minimal",
		setup: addProxySecretEnv,
		want:  `Build failed: the build container could not be created (CreateContainerConfigError): secret "proxy-settings" not found` + "\n",
	},
	{
		name:  "quota",
		repo:  "minimal",
		setup: fillPodQuota,
		want: `Build failed: the API server refused the build pod: pods "build-https-3a-2f-2fgithub-2ecom-2fbinderbuild-2d-e05ba1-012-de" is forbidden: ` +
			"exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2\n",
	},
}

// createRegistryLoginSecret creates the Secret "registry-login" as
// kubectl create secret docker-registry does: its key is .dockerconfigjson.
func createRegistryLoginSecret(t *testing.T, r *realNode, ns string) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "registry-login"},
		Type:       corev1.SecretTypeDockerConfigJson,
		StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths": {}}`},
	}
	if _, err := r.c.Client().CoreV1().Secrets(ns).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// limitMemory limits the memory of each container in ns to 64Mi.
func limitMemory(t *testing.T, r *realNode, ns string) {
	l := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "memory"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer,
			Max:  corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}}},
	}
	if _, err := r.c.Client().CoreV1().LimitRanges(ns).Create(t.Context(), l, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// denyBuildPods registers a validating webhook that refuses build pods in
// ns.
func denyBuildPods(t *testing.T, r *realNode, ns string) {
	hook := buildPodHook(t, r, ns, "deny.binderbuild.test", &admissionv1.AdmissionResponse{
		Allowed: false,
		Result:  &metav1.Status{Message: "build pods need an approved ticket"},
	})
	hooks := r.c.Client().AdmissionregistrationV1().ValidatingWebhookConfigurations()
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{hook},
	}
	if _, err := hooks.Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hooks.Delete(context.Background(), ns, metav1.DeleteOptions{}) })
}

// addProxySecretEnv registers a mutating webhook that gives build pods in
// ns the variables of the Secret "proxy-settings", which does not exist.
func addProxySecretEnv(t *testing.T, r *realNode, ns string) {
	hook := buildPodHook(t, r, ns, "proxy.binderbuild.test", &admissionv1.AdmissionResponse{
		Allowed:   true,
		Patch:     []byte(`[{"op": "add", "path": "/spec/containers/0/envFrom", "value": [{"secretRef": {"name": "proxy-settings"}}]}]`),
		PatchType: ptr.To(admissionv1.PatchTypeJSONPatch),
	})
	hooks := r.c.Client().AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: hook.Name, ClientConfig: hook.ClientConfig, Rules: hook.Rules,
			NamespaceSelector: hook.NamespaceSelector, ObjectSelector: hook.ObjectSelector,
			SideEffects: hook.SideEffects, AdmissionReviewVersions: hook.AdmissionReviewVersions,
		}},
	}
	if _, err := hooks.Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hooks.Delete(context.Background(), ns, metav1.DeleteOptions{}) })
}

// buildPodHook serves a webhook named name that answers resp, and returns
// it as called for the build pods created in ns only, so that it leaves
// the other tests alone.
func buildPodHook(t *testing.T, r *realNode, ns, name string, resp *admissionv1.AdmissionResponse) admissionregistrationv1.ValidatingWebhook {
	url, ca := r.c.StartWebhook(t, admit(resp))
	return admissionregistrationv1.ValidatingWebhook{
		Name:         name,
		ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
		}},
		NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
		ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"component": "binderhub-build"}},
		SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
		AdmissionReviewVersions: []string{"v1"},
	}
}

// admit answers every admission review with resp.
func admit(resp *admissionv1.AdmissionResponse) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(req.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "not an admission review", http.StatusBadRequest)
			return
		}
		answer := *resp
		answer.UID = review.Request.UID
		review.Request, review.Response = nil, &answer
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	})
}

// fillPodQuota limits ns to the pods it has (the server's and docker-api's)
// and waits until the quota controller has counted them.
func fillPodQuota(t *testing.T, r *realNode, ns string) {
	q := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
	}
	if _, err := r.c.Client().CoreV1().ResourceQuotas(ns).Create(t.Context(), q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		q, err := r.c.Client().CoreV1().ResourceQuotas(ns).Get(ctx, "pods", metav1.GetOptions{})
		used := q.Status.Used[corev1.ResourcePods]
		return err == nil && used.Value() == 2, nil
	})
	if err != nil {
		t.Fatalf("quota never counted the 2 pods: %v", err)
	}
}

// testRealFailure installs a release for tc, asks for its build and checks
// that the stream ends with tc's failed event.
func testRealFailure(t *testing.T, r *realNode, tc realFailure) {
	release := strings.ReplaceAll(tc.name, " ", "-")
	ns := r.install(t, release, tc.env, tc.set...)
	if tc.setup != nil {
		tc.setup(t, r, ns)
	}
	base, _ := r.serviceURL(t, ns)
	events := readEvents(t, base+realSpec(tc.repo))
	if len(events) == 0 {
		t.Fatal("no events")
	}
	var last struct{ Phase, Message string }
	if err := json.Unmarshal([]byte(events[len(events)-1]), &last); err != nil {
		t.Fatal(err)
	}
	msg := strings.ReplaceAll(last.Message, ns, "<ns>")
	if last.Phase != "failed" || msg != tc.want {
		t.Errorf("last event: phase %q, message %q; want failed, %q\nevents:\n%s", last.Phase, msg, tc.want, strings.Join(events, "\n"))
	}
}

// testRealBuild installs the chart with helm and asks its Service for a
// build: binderbuild in its pod creates a build pod on the node, the fake
// repo2docker in it builds with the docker-api pod's dockerd through the
// hostPath socket and pushes to the registry, and the client receives the
// exact events; the image is in the registry afterwards.
func testRealBuild(t *testing.T, r *realNode) {
	t0 := time.Now()
	// Namespace and release make docker-api's socket folder long: dockerd
	// once put its containerd's sockets there and exited (path too long).
	const release = "e2e-release-with-a-long-name"
	ns := r.install(t, release, nil)
	t.Logf("helm install --wait took %v", time.Since(t0).Round(time.Millisecond))

	base, pod := r.serviceURL(t, ns)
	before := r.node.APIRequests(pod)
	t1 := time.Now()
	events := readEvents(t, base+realSpec("minimal"))
	took := time.Since(t1)
	t.Logf("request to ready: %v; %d API requests of the server meanwhile", took.Round(time.Millisecond), r.node.APIRequests(pod)-before)

	image := r.registry.Host() + "/" + release + "-https-3a-2f-2fgithub-2ecom-2fbinderbuild-2de2e-2fminimal-e05ba1:" + realCommit
	if got, want := strings.Join(events, "\n"), strings.Join(buildEvents(image), "\n"); got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref); err != nil {
		t.Errorf("built image not in the registry: %v", err)
	}
}

// buildEvents are the events of a build of the repository "minimal" into
// image, as the fake repo2docker and dockerd report it.
func buildEvents(image string) []string {
	const sha = realCommit
	return []string{
		`{"phase": "waiting", "message": "Waiting for build to start...\n"}`,
		`{"message":"Picked Git content provider.\n","phase":"fetching"}`,
		`{"message":"HEAD is now at ` + sha + `\n","phase":"fetching"}`,
		`{"message":"Using DockerBuildPack builder\n","phase":"building"}`,
		`{"message":"Step 1/3 : FROM scratch","phase":"building"}`,
		`{"message":" ---\u003e \n","phase":"building"}`,
		`{"message":"Step 2/3 : COPY ref /ref","phase":"building"}`,
		`{"message":" ---\u003e <id>\n","phase":"building"}`,
		`{"message":"Step 3/3 : LABEL repo2docker.ref=` + sha + `","phase":"building"}`,
		`{"message":" ---\u003e Running in <id>\n","phase":"building"}`,
		`{"message":"Removing intermediate container <id>\n","phase":"building"}`,
		`{"message":" ---\u003e <id>\n","phase":"building"}`,
		`{"message":"Successfully built <id>\n","phase":"building"}`,
		`{"message":"Successfully tagged ` + image + `\n","phase":"building"}`,
		`{"message":"Pushing image\n","phase":"pushing"}`,
		`{"message":"Successfully pushed ` + image + `\n","phase":"pushing"}`,
		`{"phase": "ready", "message": "Done! Image built\n", "imageName": "` + image + `"}`,
	}
}

// testLateSecret asks for a build whose push Secret does not exist yet: the
// kubelet fails to mount it, the Secret is created, and the kubelet's next
// attempt mounts it; the build goes through, as it would on a node whose
// docker-api socket appears a moment late.
func testLateSecret(t *testing.T, r *realNode) {
	ns := r.install(t, "late-secret", map[string]string{"BINDERBUILD_PUSH_SECRET": "late"})
	base, _ := r.serviceURL(t, ns)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	stream := getEvents(ctx, t, base+realSpec("minimal"))
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := r.c.Client().CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedMount"})
		return err == nil && len(list.Items) > 0, nil
	})
	if err != nil {
		t.Fatalf("no FailedMount event: %v; events so far:\n%s", err, stream.String())
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "late"}, StringData: map[string]string{"config.json": "{}"}}
	if _, err := r.c.Client().CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	image := r.registry.Host() + "/late-secret-https-3a-2f-2fgithub-2ecom-2fbinderbuild-2de2e-2fminimal-e05ba1:" + realCommit
	got, want := strings.Join(dataLines(stream.all()), "\n"), strings.Join(buildEvents(image), "\n")
	if got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
}

// engineID is an image or container ID in dockerd's build output.
var engineID = regexp.MustCompile(`\b[0-9a-f]{12}\b`)

// readEvents reads the event stream at u to its end (at most 5 minutes)
// and returns the data lines' JSON, engine IDs replaced by <id>.
func readEvents(t *testing.T, u string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	return dataLines(getEvents(ctx, t, u).all())
}

// dataLines are the data lines' JSON of an event stream, engine IDs
// replaced by <id>.
func dataLines(lines []string) []string {
	var data []string
	for _, line := range lines {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data = append(data, engineID.ReplaceAllString(d, "<id>"))
		}
	}
	return data
}

// countEvents are the events of a build of the repository count-<n>-<ms>
// into image: n numbered lines among the events of buildEvents.
func countEvents(image string, n int) []string {
	events := buildEvents(image)
	var counted []string
	for i := 1; i <= n; i++ {
		counted = append(counted, fmt.Sprintf(`{"message":"Counting %d of %d\n","phase":"building"}`, i, n))
	}
	// After the fetching lines, before "Using DockerBuildPack builder".
	return slices.Concat(events[:3], counted, events[3:])
}

// testRotatedLog builds with a log that the kubelet rotates several times
// while binderbuild follows it: the client receives every line once, in
// order. 5,000 lines of about 95 bytes take 15 s or more: five of the
// kubelet's 3 s checks, most finding more than ContainerLogMaxSize written.
func testRotatedLog(t *testing.T, r *realNode) {
	const lines = 5000
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ns, stream, prefix := countBuild(ctx, t, r, "rotated", lines, 3)
	rotated := rotatedLogs(ctx, r, ns, stream.done)
	got := dataLines(stream.all())
	image := readyImage(t, got, prefix)
	// The kubelet's follow may drop the lines written at the moment it
	// rotates (it reads only the current file; kubernetes/kubernetes#115701
	// and its kin): the rest must all be there, once each, in order.
	counted, rest := splitCounting(got)
	_, wantRest := splitCounting(countEvents(image, lines))
	if diff := firstDifference(strings.Join(wantRest, "\n"), strings.Join(rest, "\n")); diff != "" {
		t.Errorf("events other than the counted lines differ: %s", diff)
	}
	for i := 1; i < len(counted); i++ {
		if counted[i] <= counted[i-1] {
			t.Fatalf("line %d came after line %d: repeated or out of order", counted[i], counted[i-1])
		}
	}
	lost := lines - len(counted)
	t.Logf("%d of %d lines lost to rotation", lost, lines)
	if lost > lines/50 {
		t.Errorf("%d of %d lines lost: more than the moments of rotation account for", lost, lines)
	}
	n := <-rotated
	t.Logf("the kubelet rotated the build's log %d times", n)
	if n < 2 {
		t.Errorf("the kubelet rotated the build's log %d times, want at least 2 (ContainerLogMaxSize %s)", n, testcluster.ContainerLogMaxSize)
	}
}

// countBuild installs release and asks its service for a build of the
// repository count-<lines>-<ms>. It returns the namespace, the event stream
// and how the built image's name starts (a hash of the repository follows).
func countBuild(ctx context.Context, t *testing.T, r *realNode, release string, lines, ms int) (ns string, stream *eventStream, imagePrefix string) {
	ns = r.install(t, release, nil)
	base, _ := r.serviceURL(t, ns)
	repo := fmt.Sprintf("count-%d-%d", lines, ms)
	stream = getEvents(ctx, t, base+realSpec(repo))
	return ns, stream, r.registry.Host() + "/" + release + "-https-3a-2f-2fgithub-2ecom-2fbinderbuild-2de2e-2f" + strings.ReplaceAll(repo, "-", "-2d") + "-"
}

// splitCounting splits the events of a count-<n>-<ms> build into the
// numbers of its counted lines and the other events.
func splitCounting(events []string) (counted []int, rest []string) {
	for _, e := range events {
		var i, n int
		if _, err := fmt.Sscanf(e, `{"message":"Counting %d of %d`, &i, &n); err == nil {
			counted = append(counted, i)
			continue
		}
		rest = append(rest, e)
	}
	return counted, rest
}

// rotatedLogs counts the rotated log files of build pods in ns seen in the
// node's pod-logs folder until done is closed, and sends the number.
func rotatedLogs(ctx context.Context, r *realNode, ns string, done <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		seen := map[string]bool{}
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			// Rotated files are named 0.log.<time>, compressed: .gz.
			files, _ := filepath.Glob(filepath.Join(r.node.PodLogsDir(), ns+"_build-*", "builder", "0.log.*"))
			for _, f := range files {
				seen[strings.TrimSuffix(f, ".gz")] = true
			}
			select {
			case <-tick.C:
			case <-done:
				out <- len(seen)
				return
			case <-ctx.Done():
				out <- len(seen)
				return
			}
		}
	}()
	return out
}

// testAPIServerRestart restarts kube-apiserver while a build finishes: the
// log stream and the watch break, the pod succeeds meanwhile, and the client
// still receives every line once, in order, and the image.
func testAPIServerRestart(t *testing.T, r *realNode) {
	const lines = 100
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	_, stream, prefix := countBuild(ctx, t, r, "restart", lines, 100)
	// A second before the counting ends; the build and push take another.
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		return strings.Contains(stream.String(), fmt.Sprintf("Counting %d of %d", lines-10, lines)), nil
	})
	if err != nil {
		t.Fatalf("the build never counted to %d: %v\n%s", lines-10, err, stream.String())
	}
	t0 := time.Now()
	if err := r.c.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver restarted in %v", time.Since(t0).Round(time.Millisecond))
	got := dataLines(stream.all())
	image := readyImage(t, got, prefix)
	if diff := firstDifference(strings.Join(countEvents(image, lines), "\n"), strings.Join(got, "\n")); diff != "" {
		t.Errorf("%d events, want %d; first difference: %s", len(got), len(countEvents(image, lines)), diff)
	}
}

// readyImage is the image of the last event, a ready one, whose name must
// start with prefix and be tagged with realCommit (its middle is a hash of
// the repository).
func readyImage(t *testing.T, events []string, prefix string) string {
	t.Helper()
	var last struct{ Phase, ImageName string }
	if len(events) > 0 {
		_ = json.Unmarshal([]byte(events[len(events)-1]), &last)
	}
	if last.Phase != "ready" || !strings.HasPrefix(last.ImageName, prefix) || !strings.HasSuffix(last.ImageName, ":"+realCommit) {
		t.Fatalf("last event is not ready with an image %s…:%s; events:\n%s", prefix, realCommit, strings.Join(events, "\n"))
	}
	return last.ImageName
}
