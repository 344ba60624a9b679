//go:build linux

package testcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// kubelet is the in-process HTTPS server the apiserver proxies pods/log to
// (kwok's --node-port points the nodes' kubeletEndpoint at it). kwok v0.8.0
// can serve logs itself, but its follow never ends: its CRI stub reports
// every container as running, so a follower would hang after FinishPod.
//
// Logs are kept per pod UID, so a pod re-created under the same name starts
// with an empty log, as with a real kubelet.
type kubelet struct {
	client kubernetes.Interface // resolves pod names to UIDs and states
	srv    *http.Server
	port   int
	closed chan struct{} // closed on stop; ends every follower

	mu   sync.Mutex
	logs map[logKey]*containerLog
}

type logKey struct {
	uid       types.UID
	container string
}

type logLine struct {
	time time.Time
	text string
}

type containerLog struct {
	lines   []logLine
	ended   bool
	changed chan struct{} // closed (and replaced) when lines or ended change
}

// pollTerminated is how often a follower checks whether its container has
// terminated (the end of a real kubelet's follow).
const pollTerminated = 200 * time.Millisecond

func startKubelet(client kubernetes.Interface, p *pki) (*kubelet, error) {
	cert, err := tls.X509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	k := &kubelet{
		client: client,
		port:   l.Addr().(*net.TCPAddr).Port,
		closed: make(chan struct{}),
		logs:   make(map[logKey]*containerLog),
	}
	k.srv = &http.Server{
		Handler:           http.HandlerFunc(k.serveHTTP),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = k.srv.ServeTLS(l, "", "") }()
	return k, nil
}

func (k *kubelet) stop() {
	close(k.closed)
	_ = k.srv.Close()
}

// get returns the log of a container, creating it empty.
func (k *kubelet) get(key logKey) *containerLog {
	k.mu.Lock()
	defer k.mu.Unlock()
	cl, ok := k.logs[key]
	if !ok {
		cl = &containerLog{changed: make(chan struct{})}
		k.logs[key] = cl
	}
	return cl
}

func (k *kubelet) appendLines(key logKey, lines []string) error {
	cl := k.get(key)
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if cl.ended {
		return fmt.Errorf("log of container %q (pod UID %s) has ended", key.container, key.uid)
	}
	for _, l := range lines {
		cl.lines = append(cl.lines, logLine{time: now, text: l})
	}
	close(cl.changed)
	cl.changed = make(chan struct{})
	return nil
}

func (k *kubelet) end(key logKey) {
	cl := k.get(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	if cl.ended {
		return
	}
	cl.ended = true
	close(cl.changed)
	cl.changed = make(chan struct{})
}

// snapshot returns the lines from index from on, whether the log ended and
// the channel announcing the next change.
func (k *kubelet) snapshot(cl *containerLog, from int) ([]logLine, bool, <-chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if from > len(cl.lines) {
		from = len(cl.lines)
	}
	return cl.lines[from:len(cl.lines):len(cl.lines)], cl.ended, cl.changed
}

// serveHTTP answers GET /containerLogs/<namespace>/<pod>/<container> with the
// query parameters follow, timestamps, tailLines and limitBytes (sinceSeconds,
// sinceTime and previous are ignored).
func (k *kubelet) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/containerLogs/")
	parts := strings.Split(rest, "/")
	if !ok || r.Method != http.MethodGet || len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	ns, name, container := parts[0], parts[1], parts[2]
	q := r.URL.Query()
	follow := q.Get("follow") == "true"
	timestamps := q.Get("timestamps") == "true"
	tail, limit := -1, -1
	if v := q.Get("tailLines"); v != "" {
		tail, _ = strconv.Atoi(v)
	}
	if v := q.Get("limitBytes"); v != "" {
		limit, _ = strconv.Atoi(v)
	}

	ctx := r.Context()
	pod, err := k.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		code := http.StatusInternalServerError
		if apierrors.IsNotFound(err) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	cl := k.get(logKey{uid: pod.UID, container: container})

	w.Header().Set("Content-Type", "text/plain")
	rc := http.NewResponseController(w)
	next := 0
	if tail >= 0 {
		lines, _, _ := k.snapshot(cl, 0)
		next = max(0, len(lines)-tail)
	}
	written := 0
	terminated := false
	tick := time.NewTicker(pollTerminated)
	defer tick.Stop()
	for {
		lines, ended, changed := k.snapshot(cl, next)
		for _, l := range lines {
			var s string
			if timestamps {
				s = l.time.UTC().Format(time.RFC3339Nano) + " "
			}
			s += l.text + "\n"
			if limit >= 0 && written+len(s) > limit {
				_, _ = w.Write([]byte(s[:limit-written]))
				return
			}
			if _, err := w.Write([]byte(s)); err != nil {
				return
			}
			written += len(s)
		}
		next += len(lines)
		_ = rc.Flush()
		// terminated is set only after a final pass over the lines, so
		// lines written before the container ended are all delivered.
		if !follow || ended || terminated {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
			terminated = k.containerTerminated(ctx, ns, name, pod.UID, container)
		case <-ctx.Done():
			return
		case <-k.closed:
			return
		}
	}
}

// containerTerminated reports whether the container has terminated, or the
// pod is gone or was replaced.
func (k *kubelet) containerTerminated(ctx context.Context, ns, name string, uid types.UID, container string) bool {
	pod, err := k.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	if err != nil {
		return false // e.g. apiserver restarting: keep following
	}
	if pod.UID != uid {
		return true
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Terminated != nil
		}
	}
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// podKey resolves a pod name to the key of one of its containers' logs.
func (k *kubelet) podKey(ctx context.Context, ns, name, container string) (logKey, error) {
	pod, err := k.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return logKey{}, fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.Name == container {
			return logKey{uid: pod.UID, container: container}, nil
		}
	}
	return logKey{}, fmt.Errorf("pod %s/%s has no container %q", ns, name, container)
}
