package repoproviders

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileRefs is a gzip-compressed smart-HTTP ref advertisement of n refs
// that all name the same commit: tens of MiB once decompressed, well under
// 1 MiB on the wire.
func hostileRefs(n int) []byte {
	const sha = "1111111111111111111111111111111111111111"
	var raw bytes.Buffer
	pkt := func(s string) { fmt.Fprintf(&raw, "%04x%s", len(s)+4, s) }
	pkt("# service=git-upload-pack\n")
	raw.WriteString("0000")
	pkt(sha + " HEAD\x00multi_ack side-band-64k ofs-delta symref=HEAD:refs/heads/main\n")
	for i := range n {
		pkt(fmt.Sprintf("%s refs/heads/branch-%08d\n", sha, i))
	}
	raw.WriteString("0000")
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(raw.Bytes())
	_ = w.Close()
	return gz.Bytes()
}

// hostileRefCount makes an advertisement of about 50 MiB decompressed, for
// the benchmark; the test needs only a little more than the limit.
const (
	hostileRefCount = 800_000
	overLimitRefs   = 80_000 // 4.6 MiB
)

// newHostileGitServer serves body as every repository's gzip-encoded ref
// advertisement on 127.0.0.1, whether or not the client asked for gzip.
func newHostileGitServer(t testing.TB, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/info/refs") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGitRefusesHugeRefAdvertisement(t *testing.T) {
	body := hostileRefs(overLimitRefs)
	srv := newHostileGitServer(t, body)
	g := NewGit(GitConfig{AllowedHosts: []string{strings.TrimPrefix(srv.URL, "http://")}}, nil, nil)
	_, err := resolveSpec(t, g, gitSpecOf(srv.URL+"/big.git", "main"))
	want := fmt.Sprintf("the list of refs of %s/big.git is larger than %d bytes", srv.URL, 4<<20)
	if err == nil || err.Error() != want {
		t.Errorf("Resolve against a %d-byte (gzip) list of %d refs: error = %v, want %q", len(body), overLimitRefs, err, want)
	}
}

// BenchmarkHostileRefList runs 16 concurrent ref lookups against a server
// whose ref list is huge but small on the wire, and reports the peak Go
// heap above the starting point (peak-heap-MiB), with the former limit of
// the ref list (16 MiB) and the default one.
func BenchmarkHostileRefList(b *testing.B) {
	body := hostileRefs(hostileRefCount)
	srv := newHostileGitServer(b, body)
	for _, limit := range []int64{16 << 20, 0} {
		b.Run(fmt.Sprintf("MaxRefsBytes=%d", limit), func(b *testing.B) {
			g := NewGit(GitConfig{AllowedHosts: []string{strings.TrimPrefix(srv.URL, "http://")}, MaxRefsBytes: limit}, nil, nil)
			repo, err := g.Parse(gitSpecOf(srv.URL+"/big.git", "main"))
			if err != nil {
				b.Fatal(err)
			}
			peak := peakDuring(b, 16, func() { _, _ = g.Resolve(b.Context(), repo) })
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(len(body))/(1<<10), "wire-KiB")
		})
	}
}

// peakDuring runs n concurrent calls of f per benchmark iteration and
// returns the largest growth of the heap over its level before the calls.
func peakDuring(b *testing.B, n int, f func()) uint64 {
	var peak uint64
	for b.Loop() {
		runtime.GC()
		base := heapBytes()
		stop := make(chan struct{})
		sampled := make(chan uint64)
		go func() { sampled <- peakHeap(stop) }()
		var wg sync.WaitGroup
		for range n {
			wg.Go(f)
		}
		wg.Wait()
		close(stop)
		if p := <-sampled; p > base {
			peak = max(peak, p-base)
		}
	}
	return peak
}

// heapBytes is the memory held by live and not yet swept heap objects.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeap samples heapBytes until stop closes and returns the largest value.
func peakHeap(stop <-chan struct{}) uint64 {
	var peak uint64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		peak = max(peak, heapBytes())
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}
