package builder_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/internal/testcluster"
)

// errCut is how a log stream the test cut ends for the executor.
var errCut = errors.New("log stream cut by the test")

// logTap sits in the executor's client transport and controls its pod log
// requests: it records when each was opened, refuses them while blocked,
// drops the first lines of every response (the part of a log the kubelet
// rotated away) and cuts open streams as a dying connection would.
type logTap struct {
	next http.RoundTripper

	mu      sync.Mutex
	opened  []time.Time
	blocked bool
	rotated int // lines gone from the start of the log
	open    []*io.PipeWriter
}

// tappedClient returns a client of the test cluster whose log requests go
// through a new logTap.
func tappedClient(t *testing.T) (kubernetes.Interface, *logTap) {
	t.Helper()
	tap := &logTap{}
	cfg := cluster.Get(t).RestConfig()
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { tap.next = rt; return tap })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client, tap
}

func (l *logTap) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/log") {
		return l.next.RoundTrip(r)
	}
	l.mu.Lock()
	l.opened = append(l.opened, time.Now())
	blocked, skip := l.blocked, l.rotated
	l.mu.Unlock()
	if blocked {
		return nil, errCut
	}
	resp, err := l.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	pr, pw := io.Pipe()
	l.mu.Lock()
	l.open = append(l.open, pw)
	l.mu.Unlock()
	go copyAfter(pw, resp.Body, skip)
	resp.Body = pr
	return resp, nil
}

// copyAfter copies body's lines after the first skip to pw.
func copyAfter(pw *io.PipeWriter, body io.ReadCloser, skip int) {
	defer body.Close()
	r := bufio.NewReader(body)
	for {
		line, err := r.ReadBytes('\n')
		if skip > 0 && len(line) > 0 {
			skip--
		} else if _, werr := pw.Write(line); werr != nil {
			return
		}
		if err != nil {
			pw.CloseWithError(err)
			return
		}
	}
}

// cut breaks every open log stream with an error.
func (l *logTap) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pw := range l.open {
		pw.CloseWithError(errCut)
	}
	l.open = nil
}

func (l *logTap) set(blocked bool, rotated int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked, l.rotated = blocked, rotated
}

func (l *logTap) attempts() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.opened...)
}

// tappedBuild starts a service whose log requests go through a logTap,
// requests repo/ref and waits until the client received the first three
// log lines.
func tappedBuild(t *testing.T, repo, ref string) (ns string, tap *logTap, c *client, pod *corev1.Pod) {
	t.Helper()
	ns = cluster.Get(t).NewNamespace(t.Context(), t)
	kc, tap := tappedClient(t)
	c = startService(t, ns, builder.KubeConfig{}, withClient(kc)).request(t, repo+"/"+ref)
	pod = waitPod(t, ns, repo, ref, corev1.PodRunning)
	writeLog(t, ns, pod.Name, r2dLines[:3]...)
	c.waitEvents(t, 4)
	return ns, tap, c, pod
}

// A log stream ending while the container still runs is followed again
// after a growing delay (200 ms, doubling), not every 200 ms.
func TestKubeLogReconnectBacksOff(t *testing.T) {
	ns, tap, c, pod := tappedBuild(t, "backoff", "kkk111")
	// Every stream now ends at once although the container runs.
	if err := cluster.Get(t).EndPodLog(t.Context(), ns, pod.Name, "builder"); err != nil {
		t.Fatal(err)
	}
	poll(t, "6 log requests", func() bool { return len(tap.attempts()) >= 6 })
	at := tap.attempts()
	for i, want := 2, 400*time.Millisecond; i < 6; i, want = i+1, want*2 {
		if gap := at[i].Sub(at[i-1]); gap < want {
			t.Errorf("log request %d came %v after the one before, want at least %v (backoff)", i+1, gap, want)
		}
	}
	if err := cluster.Get(t).FinishPod(t.Context(), ns, pod.Name, testcluster.Succeeded()); err != nil {
		t.Fatal(err)
	}
	assertEvents(t, c.wait(t), append(append([]string{waitingEvent}, forwarded()[:3]...), readyEvent("backoff", "kkk111")))
}

// A stream that broke after the kubelet rotated the log resumes after the
// last line read: no line twice, none lost.
func TestKubeLogResumeAfterRotation(t *testing.T) {
	ns, tap, c, pod := tappedBuild(t, "rotate", "lll222")
	tap.set(false, 3) // the three lines read went to a rotated file
	tap.cut()
	writeLog(t, ns, pod.Name, r2dLines[3:]...)
	finish(t, ns, pod.Name, testcluster.Succeeded())
	assertEvents(t, c.wait(t), append(append([]string{waitingEvent}, forwarded()...), readyEvent("rotate", "lll222")))
}

// A pod that finished while its log stream was broken is deleted, and its
// build ends, only once the rest of its log was read.
func TestKubeLogReadToTheEndBeforeDelete(t *testing.T) {
	ns, tap, c, pod := tappedBuild(t, "broken", "mmm333")
	tap.set(true, 0)
	tap.cut()
	writeLog(t, ns, pod.Name, r2dLines[3:]...)
	finish(t, ns, pod.Name, testcluster.Succeeded())
	finished := time.Now()
	poll(t, "a log request after the pod finished", func() bool {
		at := tap.attempts()
		return at[len(at)-1].After(finished)
	})
	if _, err := cluster.Get(t).Client().CoreV1().Pods(ns).Get(t.Context(), pod.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("pod deleted before its log was read: %v", err)
	}
	tap.set(false, 0)
	assertEvents(t, c.wait(t), append(append([]string{waitingEvent}, forwarded()...), readyEvent("broken", "mmm333")))
}
