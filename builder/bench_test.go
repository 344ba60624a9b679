package builder_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/internal/testcluster"
	"github.com/binderbuild/binderbuild/server"
)

// benchClientEnv makes the test binary a load client (see runBenchClient).
const benchClientEnv = "BINDERBUILD_BENCH_CLIENT"

const markerLines = 20

// apiCounter counts the Kubernetes API requests the executor opens.
type apiCounter struct {
	next                  http.RoundTripper
	watches, logs, others atomic.Int64
}

func (c *apiCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
		c.watches.Add(1)
	case strings.HasSuffix(r.URL.Path, "/log"):
		c.logs.Add(1)
	default:
		c.others.Add(1)
	}
	return c.next.RoundTrip(r)
}

// BenchmarkWatchers runs one build watched by N clients and reports the
// Kubernetes API requests opened for it, the server memory each waiting
// client costs, and how long a log line takes from the pod log to the
// clients. The clients run in another process, so the server's memory
// statistics are its own.
func BenchmarkWatchers(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			for b.Loop() {
				benchWatchers(b, n)
			}
		})
	}
}

func benchWatchers(b *testing.B, n int) {
	ns := cluster.Get(b).NewNamespace(b.Context(), b)
	counter := &apiCounter{}
	cfg := cluster.Get(b).RestConfig()
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	kube, err := builder.NewKube(client, builder.KubeConfig{PodConfig: builder.PodConfig{
		BuildNamespace: ns, BuildImage: "repo2docker", DockerHost: "/var/run/docker.sock", BuildTimeout: time.Hour,
		BuildNodeSelector: map[string]string{dockerAPILabel: "true"},
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := kube.Start(ctx, ctx); err != nil {
		b.Fatal(err)
	}
	srv := server.New(ctx, server.Config{APIOnly: true, ImagePrefix: "registry.test/binder/"}, server.Deps{
		Providers: []server.Provider{repoProvider{}}, Images: notBuilt{}, Builder: builder.NewShared(ctx, kube, 0),
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()

	before := heapAndStacks()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchClientEnv+"="+strconv.Itoa(n), "BINDERBUILD_BENCH_URL="+ts.URL+"/build/gh/bench/abc123?build_only=true")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	lines.Buffer(nil, 64<<20) // the delays of 10,000 clients are one long line
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("bench client: %q %v", lines.Text(), lines.Err())
	}
	pod := waitPodB(b, ns, buildName("bench", "abc123"))
	waiting := heapAndStacks()
	for i := range markerLines {
		line := fmt.Sprintf(`{"message": "marker %d %d\n", "phase": "building"}`, i, time.Now().UnixNano())
		if err := cluster.Get(b).WritePodLog(ctx, ns, pod, "builder", line); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cluster.Get(b).EndPodLog(ctx, ns, pod, "builder"); err != nil {
		b.Fatal(err)
	}
	if err := cluster.Get(b).FinishPod(ctx, ns, pod, testcluster.Succeeded()); err != nil {
		b.Fatal(err)
	}
	var delays []time.Duration
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &delays) != nil {
		b.Fatalf("bench client result: %q", lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	if len(delays) != n*markerLines {
		b.Fatalf("%d delays, want %d", len(delays), n*markerLines)
	}
	slices.Sort(delays)
	b.ReportMetric(float64(counter.watches.Load()), "watches")
	b.ReportMetric(float64(counter.logs.Load()), "log-streams")
	b.ReportMetric(float64(waiting-before)/float64(n), "server-B/client")
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "max-ms")
}

// heapAndStacks is the memory the process uses for objects and stacks,
// after a collection.
func heapAndStacks() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

func waitPodB(b *testing.B, ns, name string) string {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		p, err := cluster.Get(b).Client().CoreV1().Pods(ns).Get(b.Context(), name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			return name
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("pod %s not running", name)
	return ""
}

// runBenchClient opens n event streams, prints "ready" once each received
// its first event, then prints the delays of every marker line as JSON.
func runBenchClient(n int, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	conns := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", u.RequestURI(), u.Host)
		r := bufio.NewReader(c)
		for { // headers, then the first event
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
		conns[i] = r
	}
	fmt.Println("ready")
	var mu sync.Mutex
	var delays []time.Duration
	var wg sync.WaitGroup
	for _, r := range conns {
		wg.Go(func() {
			for {
				line, err := r.ReadString('\n')
				if err != nil || strings.Contains(line, `"phase": "ready"`) {
					return
				}
				var i int
				var sent int64
				if at := strings.Index(line, "marker "); at >= 0 {
					if _, err := fmt.Sscanf(line[at:], "marker %d %d", &i, &sent); err == nil {
						d := time.Duration(time.Now().UnixNano() - sent)
						mu.Lock()
						delays = append(delays, d)
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	out, _ := json.Marshal(delays)
	fmt.Println(string(out))
	return nil
}
