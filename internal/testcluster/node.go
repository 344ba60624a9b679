//go:build linux

package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/binderbuild/binderbuild/internal/goimage"
)

// PauseImage is the sandbox image of real nodes, built from
// internal/testcluster/pause and imported into each node's containerd.
const PauseImage = "localhost/testcluster/pause:latest"

// pausePackage is PauseImage's main package.
const pausePackage = "github.com/binderbuild/binderbuild/internal/testcluster/pause"

// hostDirs are mounted over with an empty tmpfs in the node's private mount
// namespace: containerd, the CNI plugins and the kubelet write there at
// fixed paths, and whatever they leave vanishes with the namespace.
var hostDirs = []string{"/run/containerd", "/run/netns", "/var/lib/cni", "/var/log/containers"}

// Node is a real node of the cluster: a kubelet and a containerd of its own,
// running pods with runc on a CNI bridge that only the node's pods and the
// host share (no masquerade, no default route in pods). It is created by
// AddRealNode and stopped by the cluster's Stop.
//
// containerd and the kubelet share one private mount namespace, so every
// mount they make (rootfs overlays, volumes, network namespaces) disappears
// with them; pods run in cgroup CgroupRoot, which Stop empties and removes.
type Node struct {
	id     string // random; names the bridge, the cgroup and the record
	name   string
	dir    string
	ip     string // the bridge's address: node InternalIP, kubelet address
	subnet *net.IPNet
	bridge string
	cgroup string // the kubelet's cgroupRoot, e.g. /testcluster-0123abcd
	socket string // containerd's CRI and API socket

	containerd  *process
	kubelet     *process
	apiProxy    *http.Server // kube-apiserver for pods (startAPIProxy)
	apiPort     int
	apiMu       sync.Mutex
	apiRequests map[string]int // requests through apiProxy by pod IP
}

// newNode returns the node with id, named name, in folder dir.
func newNode(id, name, dir string) *Node {
	return &Node{
		id:     id,
		name:   name,
		dir:    dir,
		bridge: "tcbr-" + id,
		cgroup: "/testcluster-" + id,
		socket: filepath.Join(dir, "containerd.sock"),
	}
}

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// IP returns the node's InternalIP, the host side of its pod bridge.
func (n *Node) IP() string { return n.ip }

// PodLogsDir is where the node's kubelet keeps the containers' logs:
// <namespace>_<pod>_<uid>/<container>/<restarts>.log, and the rotated
// files beside it.
func (n *Node) PodLogsDir() string { return filepath.Join(n.dir, "pod-logs") }

// ContainerLogMaxSize is the size past which a real node's kubelet rotates
// a container's log, looking every 3 s: small, so that tests see rotation.
const ContainerLogMaxSize = "64Ki"

// AddRealNode starts a real node called name (containerd, runc and the
// kubelet, see Node) and waits until it is Ready. Images are never pulled:
// the node has PauseImage, and tests add theirs with ImportImage and run them
// with imagePullPolicy Never or IfNotPresent. The node carries no kwok
// annotation, so kwok leaves it alone. Needs root, the packages of
// tools/node-deps.sh and the kubelet of `make cluster-bins`.
func (c *Cluster) AddRealNode(ctx context.Context, name string) (_ *Node, err error) {
	if _, err := os.Stat(filepath.Join(c.bin, "kubelet")); err != nil {
		return nil, fmt.Errorf("%w (kubelet not in %s)", ErrBinariesMissing, c.bin)
	}
	if err := reapOrphans(); err != nil {
		return nil, fmt.Errorf("clean up after killed tests: %w", err)
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	n := newNode(hex.EncodeToString(suffix), name, filepath.Join(c.dir, "node-"+name))
	if !c.addNode(n) {
		return nil, errors.New("cluster stopped")
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.stop(c))
			c.removeNode(n)
		}
	}()
	if err := n.record(); err != nil {
		return nil, err
	}
	for _, d := range []string{"containerd", "kubelet", "cni/conf", "cni/ipam", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := n.setupBridge(); err != nil {
		return nil, err
	}
	if err := n.setupCgroups(); err != nil {
		return nil, err
	}
	if err := n.startAPIProxy(c); err != nil {
		return nil, err
	}
	if err := c.timed("containerd "+name, func() error { return n.startContainerd(ctx, c.spawner) }); err != nil {
		return nil, err
	}
	pause, err := goimage.Build(ctx, goimage.Options{Package: pausePackage})
	if err != nil {
		return nil, err
	}
	if err := n.ImportImage(ctx, PauseImage, pause); err != nil {
		return nil, err
	}
	if err := c.timed("kubelet "+name, func() error { return n.startKubelet(ctx, c) }); err != nil {
		return nil, err
	}
	return n, n.waitReady(ctx, c)
}

// addNode records n unless the cluster stopped.
func (c *Cluster) addNode(n *Node) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.nodes = append(c.nodes, n)
	}
	return !c.stopped
}

func (c *Cluster) removeNode(n *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.nodes {
		if m == n {
			c.nodes = append(c.nodes[:i], c.nodes[i+1:]...)
			return
		}
	}
}

// setupBridge creates the pod bridge with the node's address on a /24 that
// no interface of the machine uses.
func (n *Node) setupBridge() error {
	gw, subnet, err := freeSubnet()
	if err != nil {
		return err
	}
	n.ip, n.subnet = gw.String(), subnet
	ones, _ := subnet.Mask.Size()
	for _, args := range [][]string{
		{"link", "add", n.bridge, "type", "bridge"},
		{"addr", "add", n.ip + "/" + strconv.Itoa(ones), "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(n.dir, "cni/conf/10-testcluster.conflist"), []byte(n.cniConfig()), 0o644)
}

// cniConfig is the pod network: the bridge plugin on n.bridge with
// host-local addresses from n.subnet. No routes and no ipMasq: a pod reaches
// its own subnet (the host at n.ip and the other pods) and nothing else.
func (n *Node) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "testcluster",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": %q, "gateway": %q}]],
      "dataDir": %q
    }
  }]
}
`, n.bridge, n.subnet.String(), n.ip, filepath.Join(n.dir, "cni/ipam"))
}

// freeSubnet picks a random 10.x.y.0/24 in 10.128.0.0/9 that overlaps no
// address of the machine, and returns its .1 and the subnet.
func freeSubnet() (net.IP, *net.IPNet, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, nil, err
	}
	for range 100 {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		subnet := &net.IPNet{IP: net.IPv4(10, 128|b[0], b[1], 0).To4(), Mask: net.CIDRMask(24, 32)}
		if !overlaps(subnet, addrs) {
			return net.IPv4(10, 128|b[0], b[1], 1).To4(), subnet, nil
		}
	}
	return nil, nil, errors.New("no free /24 in 10.128.0.0/9")
}

func overlaps(subnet *net.IPNet, addrs []net.Addr) bool {
	for _, a := range addrs {
		if in, ok := a.(*net.IPNet); ok && (in.Contains(subnet.IP) || subnet.Contains(in.IP)) {
			return true
		}
	}
	return false
}

// startContainerd starts containerd in a new private mount namespace with
// empty tmpfs over hostDirs, and waits until it answers.
func (n *Node) startContainerd(ctx context.Context, s *spawner) error {
	dir := filepath.Join(n.dir, "containerd")
	config := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(config, []byte(n.containerdConfig()), 0o644); err != nil {
		return err
	}
	for _, d := range hostDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	script := `set -e; for d in ` + strings.Join(hostDirs, " ") + `; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done; exec "$@"`
	p, err := s.startProcess("containerd", dir, nil, "unshare",
		"--mount", "--propagation", "private", "sh", "-c", script, "sh", "containerd", "--config", config)
	if err != nil {
		return err
	}
	n.containerd = p
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("containerd exited (%v); output:\n%s", p.err, p.logTail(4000))
		}
		return n.ctr(ctx, "version") == nil, nil
	})
}

// containerdConfig is containerd 1.6's config (version 2): state under the
// node's folder, the CRI plugin with PauseImage, cgroupfs and the node's CNI
// configuration. The stream server (exec, attach) listens on loopback.
func (n *Node) containerdConfig() string {
	dir := filepath.Join(n.dir, "containerd")
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Pods may not lower their oom_score_adj below containerd's: this machine
  # denies root that (no CAP_SYS_RESOURCE), so a sandbox's -998 fails runc.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
    max_conf_num = 1
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), n.socket, PauseImage, filepath.Join(n.dir, "cni/conf"))
}

// ctr runs containerd's CLI against the node's containerd in the CRI
// namespace.
func (n *Node) ctr(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.socket, "--namespace", "k8s.io"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// ImportImage makes img available on the node as ref (e.g.
// "localhost/test/app:1"), unpacked for the CRI, as a pull would.
func (n *Node) ImportImage(ctx context.Context, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(n.dir, "image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = tarball.Write(tag, img, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write image %s: %w", ref, err)
	}
	return n.ctr(ctx, "images", "import", f.Name())
}

// kubeletConfig is the KubeletConfiguration of a test node: cgroupfs on cgroup
// v1, clients authenticated by the cluster CA (kube-apiserver's kubelet
// client certificate) and allowed everything, no DNS settings for pods, no
// image garbage collection and eviction only when the machine is nearly full.
func (n *Node) kubeletConfig(c *Cluster, port, healthzPort int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %q}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
failSwapOn: false
podLogsDir: %q
resolvConf: ""
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 50Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
serializeImagePulls: false
containerLogMaxSize: %s
containerLogMaxFiles: 2
containerLogMonitorInterval: 3s
`, n.ip, port, healthzPort, c.pki.caFile, n.socket, n.cgroup, n.PodLogsDir(), ContainerLogMaxSize)
}

// startKubelet starts the kubelet in containerd's mount namespace and waits
// for its healthz.
func (n *Node) startKubelet(ctx context.Context, c *Cluster) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	healthz, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(n.dir, "kubelet")
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(n.kubeletConfig(c, port, healthz)), 0o644); err != nil {
		return err
	}
	p, err := c.spawner.startProcess("kubelet", dir, nil, "nsenter",
		"--mount=/proc/"+strconv.Itoa(n.containerd.cmd.Process.Pid)+"/ns/mnt", "--",
		filepath.Join(c.bin, "kubelet"),
		"--config="+config,
		"--kubeconfig="+c.kubeconfig,
		"--hostname-override="+n.name,
		"--node-ip="+n.ip,
		"--root-dir="+filepath.Join(dir, "root"),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--v=2",
	)
	if err != nil {
		return err
	}
	n.kubelet = p
	return p.waitReady(ctx, "http://"+hostPort(healthz)+"/healthz", nil)
}

// waitReady waits until the node object reports Ready.
func (n *Node) waitReady(ctx context.Context, c *Cluster) error {
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if n.kubelet.exited() {
			return false, fmt.Errorf("kubelet exited (%v)", n.kubelet.err)
		}
		node, err := c.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		return err == nil && nodeReady(node), nil
	})
	if err != nil {
		return fmt.Errorf("wait for node %s to be Ready: %w; kubelet output:\n%s", n.name, err, n.kubelet.logTail(4000))
	}
	return nil
}

// stop ends the node and removes what it left on the machine: its pods are
// deleted through the API (the kubelet stops their containers and tears
// down their network), then the kubelet and containerd are stopped, any
// process still in the pod cgroups or a shim of this containerd is killed,
// and the cgroups and the bridge are removed. The mount namespace ends with
// its last process.
func (n *Node) stop(c *Cluster) error {
	if n.kubelet != nil && !n.kubelet.exited() {
		n.drain(c)
	}
	n.kubelet.stop(5 * time.Second)
	n.stopAPIProxy()
	killCgroup(n.cgroup)
	n.containerd.stop(5 * time.Second)
	killShims(n.socket)
	err := errors.Join(removeCgroups(n.cgroup), n.removeBridge())
	if err == nil {
		n.unrecord()
	}
	return err
}

// drain deletes the node's pods and waits (bounded) until the kubelet has
// stopped them all, so their sandboxes and network go the orderly way.
func (n *Node) drain(c *Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sel := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", n.name).String()}
	pods, err := c.client.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		if err != nil && !apierrors.IsNotFound(err) {
			return
		}
	}
	_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return n.noTasks(ctx), nil
	})
}

// noTasks reports whether containerd runs no container any more.
func (n *Node) noTasks(ctx context.Context) bool {
	out, err := exec.CommandContext(ctx, "ctr", "--address", n.socket, "--namespace", "k8s.io", "tasks", "ls", "-q").Output()
	return err == nil && strings.TrimSpace(string(out)) == ""
}

func (n *Node) removeBridge() error {
	if _, err := net.InterfaceByName(n.bridge); err != nil {
		return nil // never created
	}
	return run("ip", "link", "del", n.bridge)
}

// run runs a command, returning its output in the error.
func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// stopNodes stops the real nodes in parallel.
func (c *Cluster) stopNodes(nodes []*Node) error {
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() { errs[i] = n.stop(c) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
