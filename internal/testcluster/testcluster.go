//go:build linux

// Package testcluster runs a real, throw-away Kubernetes control plane for
// integration tests: etcd, kube-apiserver and kube-scheduler built by
// tools/cluster/build.sh (`make cluster-bins`), kwok simulating nodes and the
// pod lifecycle, and an in-process fake kubelet serving pods/log for them.
//
// Every server binds 127.0.0.1 on free ports and lives in its own temporary
// folder, so test packages may each start a cluster and run in parallel.
// Without a controller-manager (Options.ControllerManager) there are no
// namespace, garbage-collector or service-account controllers: use a fresh
// namespace per test (NewNamespace) and never delete it.
//
// AddRealNode adds a real node instead: containerd, runc and a kubelet that
// run pods for real on a bridge of their own (see Node); it needs root and
// `make node-deps`.
//
// Pods scheduled onto kwok nodes (AddNode) go Pending → Running and stay
// Running until the test ends them with FinishPod. Container logs are
// scripted with WritePodLog; followers get appended lines as they are written
// and reach the end of the stream when the container terminates.
//
// Linux only (process groups and Pdeathsig), as the tests that use it.
package testcluster

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

//go:embed kwok.yaml
var kwokStages []byte

// ErrBinariesMissing is returned by Start when a binary is not in the
// binary folder; run `make cluster-bins` to build them.
var ErrBinariesMissing = errors.New("test cluster binaries missing: run `make cluster-bins`")

// ModulePath is the module whose root holds .cache/bin.
const ModulePath = "github.com/binderbuild/binderbuild"

// BinEnv names the environment variable that overrides the binary folder.
const BinEnv = "BINDERBUILD_TEST_BIN"

// FakeNodeAnnotation marks the nodes kwok manages (kwok.x-k8s.io/node=fake).
const FakeNodeAnnotation = "kwok.x-k8s.io/node"

// Options configures Start. The zero value is ready to use.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-scheduler and kwok. Default:
	// $BINDERBUILD_TEST_BIN, else <repo root>/.cache/bin, where the repo root
	// is the nearest parent of the working directory whose go.mod declares
	// module github.com/binderbuild/binderbuild.
	BinDir string
	// TempDir is the parent of the cluster's run folder. Default: os.TempDir().
	// The run folder is removed by Stop.
	TempDir string
	// APIServerArgs are appended to kube-apiserver's flags (later flags win),
	// e.g. "--feature-gates=...".
	APIServerArgs []string
	// ControllerManager also starts kube-controller-manager (every default
	// controller: Deployments, DaemonSets, Jobs, namespaces, garbage
	// collection, service accounts and their tokens, the kube-root-ca.crt
	// ConfigMaps) and enables the ServiceAccount admission plugin, so pods
	// get API credentials as in a real cluster. Default false: kwok tests
	// need neither.
	ControllerManager bool
}

// Cluster is a running test cluster. Its methods are safe for concurrent use.
type Cluster struct {
	bin     string
	dir     string
	pki     *pki
	token   string // bearer token of the system:masters user "admin"
	spawner *spawner
	kubelet *kubelet

	etcdPort, apiPort int
	apiArgs           []string   // reused by RestartAPIServer
	restartMu         sync.Mutex // serialises RestartAPIServer calls

	restConfig *rest.Config
	client     kubernetes.Interface
	kubeconfig string

	startup []string // "component duration", for StartT's log

	mu        sync.Mutex // guards the process fields
	etcd      *process
	apiserver *process
	scheduler *process
	kwok      *process
	// controllerManager runs with Options.ControllerManager only.
	controllerManager *process
	nodes             []*Node // real nodes (AddRealNode)
	stopped           bool
}

// BinDir returns the folder Start looks for binaries in when
// Options.BinDir is empty (see Options.BinDir).
func BinDir() (string, error) {
	if d := os.Getenv(BinEnv); d != "" {
		return d, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "bin"), nil
}

var moduleLine = regexp.MustCompile(`(?m)^module\s+"?([^"\s]+)"?\s*$`)

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if m := moduleLine.FindSubmatch(data); m != nil && string(m[1]) == ModulePath {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s above the working directory; set %s", ModulePath, BinEnv)
		}
		dir = parent
	}
}

// StartT starts a cluster for t and stops it in t.Cleanup. It fails the test
// (never skips) when binaries are missing or the cluster does not come up.
// When the test failed, the tail of each component's output is logged.
func StartT(t testing.TB) *Cluster {
	t.Helper()
	return StartWithT(t, Options{})
}

// StartWithT is StartT with options.
func StartWithT(t testing.TB, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	t.Logf("testcluster: ready in %v (%s); run folder %s", time.Since(t0).Round(time.Millisecond), strings.Join(c.startup, ", "), c.dir)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range c.processes() {
				t.Logf("testcluster: last output of %s:\n%s", p.name, p.logTail(3000))
			}
		}
		if err := c.Stop(); err != nil {
			t.Errorf("testcluster: stop: %v", err)
		}
	})
	return c
}

// Start starts etcd, kube-apiserver, kube-scheduler, kwok and the fake
// kubelet, and returns when all are ready. ctx bounds the start-up only; the
// cluster runs until Stop. The caller must call Stop.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	bin := opts.BinDir
	if bin == "" {
		if bin, err = BinDir(); err != nil {
			return nil, err
		}
	}
	var missing []string
	bins := []string{"etcd", "kube-apiserver", "kube-scheduler", "kwok"}
	if opts.ControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w (%s not in %s)", ErrBinariesMissing, strings.Join(missing, ", "), bin)
	}

	dir, err := os.MkdirTemp(opts.TempDir, "testcluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir, spawner: newSpawner()}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	for _, d := range []string{"pki", "etcd", "kube-apiserver", "kube-scheduler", "kwok"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if c.pki, err = newPKI(filepath.Join(dir, "pki")); err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	c.token = hex.EncodeToString(tok)

	if err := c.timed("etcd", func() error { return c.startEtcd(ctx) }); err != nil {
		return nil, err
	}
	if err := c.timed("kube-apiserver", func() error { return c.startAPIServer(ctx, opts) }); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		return nil, err
	}
	if c.client, err = kubernetes.NewForConfig(c.restConfig); err != nil {
		return nil, err
	}
	if c.kubelet, err = startKubelet(c.client, c.pki); err != nil {
		return nil, err
	}
	if err := c.timed("kube-scheduler", func() error { return c.startScheduler(ctx) }); err != nil {
		return nil, err
	}
	if err := c.timed("kwok", func() error { return c.startKwok(ctx) }); err != nil {
		return nil, err
	}
	if opts.ControllerManager {
		if err := c.timed("kube-controller-manager", func() error { return c.startControllerManager(ctx) }); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// timed runs start with retryPorts and records how long it took.
func (c *Cluster) timed(name string, start func() error) error {
	t0 := time.Now()
	if err := retryPorts(start); err != nil {
		return err
	}
	c.startup = append(c.startup, fmt.Sprintf("%s %v", name, time.Since(t0).Round(time.Millisecond)))
	return nil
}

// retryPorts retries a component start that lost its free port to another
// process (the window between freePort and the component's bind).
func retryPorts(start func() error) error {
	var err error
	for range 3 {
		err = start()
		// The component's own output is the only signal; it is not a Go error.
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
	}
	return err
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	client, err := freePort()
	if err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "etcd")
	clientURL := "http://" + hostPort(client)
	peerURL := "http://" + hostPort(peer)
	p, err := c.spawner.startProcess("etcd", dir, nil, filepath.Join(c.bin, "etcd"),
		"--name=default",
		"--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	if err := c.setProc(&c.etcd, p); err != nil {
		return err
	}
	c.etcdPort = client
	if err := p.waitReady(ctx, clientURL+"/health", nil); err != nil {
		p.stop(5 * time.Second)
		return err
	}
	return nil
}

func (c *Cluster) startAPIServer(ctx context.Context, opts Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "kube-apiserver")
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(c.token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return err
	}
	url := "https://" + hostPort(port)
	c.apiPort = port
	c.apiArgs = append([]string{
		"--etcd-servers=http://" + hostPort(c.etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--tls-cert-file=" + c.pki.certFile,
		"--tls-private-key-file=" + c.pki.keyFile,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + url + "/",
		"--service-account-key-file=" + c.pki.saPubFile,
		"--service-account-signing-key-file=" + c.pki.saKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		disabledAdmission(opts.ControllerManager),
		// Silences "may not be in the loopback range"; no Service "kubernetes".
		"--endpoint-reconciler-type=none",
		// kwok adds a Hostname address (the node name) that does not resolve.
		"--kubelet-preferred-address-types=InternalIP",
		// A real node's kubelet (AddRealNode) trusts the cluster CA for
		// clients; the fake kubelet ignores client certificates.
		"--kubelet-client-certificate=" + c.pki.kubeletClientCert,
		"--kubelet-client-key=" + c.pki.kubeletClientKey,
		"--profiling=false",
		// On SIGTERM, drain and stop within ~2 s instead of waiting up to
		// --request-timeout (60 s) for open watches and log streams.
		"--shutdown-send-retry-after=true",
	}, opts.APIServerArgs...)
	return c.runAPIServer(ctx)
}

// disabledAdmission is kube-apiserver's --disable-admission-plugins flag.
// Without kube-controller-manager nothing creates default service accounts
// (ServiceAccount admission would refuse every pod); with or without it
// nothing lifts the not-ready taint TaintNodesByCondition puts on new nodes
// (the scheduler would never place a pod).
func disabledAdmission(controllerManager bool) string {
	if controllerManager {
		return "--disable-admission-plugins=TaintNodesByCondition"
	}
	return "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition"
}

// runAPIServer starts kube-apiserver with c.apiArgs and waits for /readyz.
func (c *Cluster) runAPIServer(ctx context.Context) error {
	p, err := c.spawner.startProcess("kube-apiserver", filepath.Join(c.dir, "kube-apiserver"), nil,
		filepath.Join(c.bin, "kube-apiserver"), c.apiArgs...)
	if err != nil {
		return err
	}
	if err := c.setProc(&c.apiserver, p); err != nil {
		return err
	}
	hdr := http.Header{"Authorization": {"Bearer " + c.token}}
	if err := p.waitReady(ctx, "https://"+hostPort(c.apiPort)+"/readyz", hdr); err != nil {
		p.stop(10 * time.Second)
		return err
	}
	return nil
}

func (c *Cluster) writeKubeconfig() error {
	server := "https://" + hostPort(c.apiPort)
	c.restConfig = &rest.Config{
		Host:            server,
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caPEM},
		// Tests create many objects quickly; client-go's default 5 QPS throttles.
		QPS:   1000,
		Burst: 1000,
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.token}
	cfg.Contexts["testcluster"] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "testcluster"
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	return clientcmd.WriteToFile(*cfg, c.kubeconfig)
}

func (c *Cluster) startScheduler(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "kube-scheduler")
	p, err := c.spawner.startProcess("kube-scheduler", dir, nil, filepath.Join(c.bin, "kube-scheduler"),
		"--kubeconfig="+c.kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "certs"),
	)
	if err != nil {
		return err
	}
	if err := c.setProc(&c.scheduler, p); err != nil {
		return err
	}
	// /readyz includes the scheduler's informer sync.
	if err := p.waitReady(ctx, "https://"+hostPort(port)+"/readyz", nil); err != nil {
		p.stop(5 * time.Second)
		return err
	}
	return nil
}

func (c *Cluster) startControllerManager(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "kube-controller-manager")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p, err := c.spawner.startProcess("kube-controller-manager", dir, nil, filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig="+c.kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-private-key-file="+c.pki.saKeyFile,
		"--root-ca-file="+c.pki.caFile,
		"--use-service-account-credentials=false",
	)
	if err != nil {
		return err
	}
	if err := c.setProc(&c.controllerManager, p); err != nil {
		return err
	}
	if err := p.waitReady(ctx, "https://"+hostPort(port)+"/healthz", nil); err != nil {
		p.stop(5 * time.Second)
		return err
	}
	return nil
}

func (c *Cluster) startKwok(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "kwok")
	stages := filepath.Join(dir, "kwok.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o644); err != nil {
		return err
	}
	// kwok loads ~/.kwok/kwok.yaml when it exists; HOME keeps it hermetic.
	p, err := c.spawner.startProcess("kwok", dir, []string{"HOME=" + dir}, filepath.Join(c.bin, "kwok"),
		"--kubeconfig="+c.kubeconfig,
		"--config="+stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+FakeNodeAnnotation+"=fake",
		"--cidr=10.244.0.1/16",
		"--node-ip=127.0.0.1",
		// Nodes advertise the fake kubelet as their kubelet endpoint.
		"--node-port="+strconv.Itoa(c.kubelet.port),
		// kwok's own server (healthz only); without it kwok would listen on
		// 0.0.0.0:<node-port>.
		"--server-address="+hostPort(port),
	)
	if err != nil {
		return err
	}
	if err := c.setProc(&c.kwok, p); err != nil {
		return err
	}
	if err := p.waitReady(ctx, "http://"+hostPort(port)+"/healthz", nil); err != nil {
		p.stop(5 * time.Second)
		return err
	}
	return nil
}

// setProc records p in field, or stops p when Stop already ran (e.g. during
// RestartAPIServer), so no process outlives the cluster.
func (c *Cluster) setProc(field **process, p *process) error {
	c.mu.Lock()
	stopped := c.stopped
	if !stopped {
		*field = p
	}
	c.mu.Unlock()
	if stopped {
		p.stop(time.Second)
		return errors.New("cluster stopped")
	}
	return nil
}

func (c *Cluster) processes() []*process {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*process
	procs := []*process{c.etcd, c.apiserver, c.scheduler, c.kwok, c.controllerManager}
	for _, n := range c.nodes {
		procs = append(procs, n.containerd, n.kubelet)
	}
	for _, p := range procs {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Stop kills the cluster's processes (and only those, by process group),
// stops the fake kubelet and removes the run folder. It is idempotent.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	procs := []*process{c.kwok, c.scheduler, c.apiserver, c.etcd}
	nodes, cm := c.nodes, c.controllerManager
	c.mu.Unlock()

	// Controllers would replace the pods the nodes' drain deletes; the nodes
	// go while the API server can still tell their kubelets to stop pods.
	cm.stop(5 * time.Second)
	nodeErr := c.stopNodes(nodes)
	for _, p := range procs {
		p.stop(5 * time.Second) // the run folder is discarded: no need to wait longer
	}
	if c.kubelet != nil {
		c.kubelet.stop()
	}
	// Only after every child is gone: the spawner's thread exit fires Pdeathsig.
	c.spawner.close()
	return errors.Join(nodeErr, os.RemoveAll(c.dir))
}

// RestConfig returns a copy of the admin (system:masters) client config. It
// stays valid across RestartAPIServer.
func (c *Cluster) RestConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Client returns an admin clientset.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// KubeconfigPath returns a kubeconfig file for the admin user, usable by
// kubectl and by the service under test through KUBECONFIG. It verifies the
// server certificate; its default namespace is "default".
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// APIServerURL returns the https URL of kube-apiserver.
func (c *Cluster) APIServerURL() string { return "https://" + hostPort(c.apiPort) }

// Dir returns the cluster's run folder; each component writes its output
// to <Dir>/<component>/<component>.log.
func (c *Cluster) Dir() string { return c.dir }

// RestartAPIServer stops kube-apiserver (SIGTERM) and starts it again on the
// same port with the same flags, returning once /readyz is ok. Existing
// watches and log streams are cut; clients built from RestConfig reconnect.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	c.restartMu.Lock()
	defer c.restartMu.Unlock()
	c.mu.Lock()
	old := c.apiserver
	stopped := c.stopped
	c.mu.Unlock()
	if stopped {
		return errors.New("cluster stopped")
	}
	old.stop(30 * time.Second)
	// The port can linger for a moment after exit; retry on a lost bind.
	return wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		err := c.runAPIServer(ctx)
		if err != nil && strings.Contains(err.Error(), "address already in use") {
			return false, nil
		}
		return err == nil, err
	})
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace named after t (generateName) and returns
// its name; it fails t on error. Namespaces are never deleted (no namespace
// controller runs), so each test should use its own.
func (c *Cluster) NewNamespace(ctx context.Context, t testing.TB) string {
	t.Helper()
	prefix := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(prefix) > 40 {
		prefix = strings.Trim(prefix[:40], "-")
	}
	ns, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testcluster: create namespace: %v", err)
	}
	return ns.Name
}

// DefaultNodeCapacity is the capacity AddNode gives a node when none is
// passed: cpu 32, memory 256Gi, pods 110, ephemeral-storage 100Gi.
func DefaultNodeCapacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

// AddNode creates a kwok-managed node (annotation kwok.x-k8s.io/node=fake)
// with the given labels plus kubernetes.io/hostname and kubernetes.io/os, and
// capacity (= allocatable; DefaultNodeCapacity when nil), and waits until it
// is Ready. The node has no taints, so the scheduler may place any pod on it.
func (c *Cluster) AddNode(ctx context.Context, name string, labels map[string]string, capacity corev1.ResourceList) error {
	if capacity == nil {
		capacity = DefaultNodeCapacity()
	}
	l := map[string]string{
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
	}
	for k, v := range labels {
		l[k] = v
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      l,
			Annotations: map[string]string{FakeNodeAnnotation: "fake"},
		},
		// kwok's node-initialize stage keeps a capacity it finds on the node.
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		n, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return n.Status.DaemonEndpoints.KubeletEndpoint.Port == int32(c.kubelet.port) && nodeReady(n), nil
	})
	if err != nil {
		return fmt.Errorf("wait for node %s to be Ready: %w", name, err)
	}
	return nil
}

// WritePodLog appends lines to the log of container in the pod named pod in
// namespace ns, as the container would print them. The pod must exist; the
// log belongs to its current incarnation (UID). Followers attached through
// pods/log (client-go GetLogs(..., Follow: true), kubectl logs -f) receive the
// lines as they are written. It fails once the log was ended by EndPodLog.
func (c *Cluster) WritePodLog(ctx context.Context, ns, pod, container string, lines ...string) error {
	key, err := c.kubelet.podKey(ctx, ns, pod, container)
	if err != nil {
		return err
	}
	return c.kubelet.appendLines(key, lines)
}

// EndPodLog closes the log of a container: followers get the end of the
// stream once they have read every line. Followers also end when the
// container terminates (FinishPod), which is what a real kubelet does; use
// EndPodLog to end a stream while the pod still runs.
func (c *Cluster) EndPodLog(ctx context.Context, ns, pod, container string) error {
	key, err := c.kubelet.podKey(ctx, ns, pod, container)
	if err != nil {
		return err
	}
	c.kubelet.end(key)
	return nil
}

// nodeReady reports whether the node's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
