package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/binderbuild/binderbuild"
)

// bareEnv, in the environment of this package's test binary, makes it a
// bare net/http server on that address writing the frame in bareFrameEnv:
// the reference of BenchmarkWarmHitExternal, in a process of its own.
const (
	bareEnv      = "BINDERBUILD_BENCH_BARE_LISTEN"
	bareFrameEnv = "BINDERBUILD_BENCH_BARE_FRAME"
)

// serveBare is the reference server: the same single event, no work.
func serveBare(addr, frame string) error {
	body := []byte(frame)
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(body) //nolint:errcheck // benchmark peer
		w.(http.Flusher).Flush()
	}))
}

// BenchmarkWarmHitExternal measures warm build_only cache hits from outside:
// wrk, in its own process, against the real binary (bin/binderbuild, built
// by make bench, default settings: access log, events and metrics on) and
// against a bare net/http handler writing the same event in another
// process, interleaved in one run at 1, 64 and 256 connections. ratio is
// binderbuild's req/s over the bare handler's.
func BenchmarkWarmHitExternal(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Fatal("wrk not found: run `make bench-deps` (apt-get install wrk)")
	}
	bin, err := filepath.Abs("../../bin/binderbuild")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%v: run `make build` first (make bench does)", err)
	}
	f := newFixture(b)
	image := binderbuild.ImageName(f.prefix, "org-repo", headSHA)
	frame := "data: " + `{"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n"
	svcAddr, bareAddr := freeAddrB(b), freeAddrB(b)
	start(b, exec.Command(bin, "serve"), "BINDERBUILD_LISTEN="+svcAddr)
	start(b, exec.Command(os.Args[0], "-test.run=^$"), bareEnv+"="+bareAddr, bareFrameEnv+"="+frame)
	svc, bare := "http://"+svcAddr+warmPath, "http://"+bareAddr+warmPath
	for _, u := range []string{svc, bare} {
		waitServing(b, u)
	}
	gh, reg := f.github.calls.Load(), f.registry.calls.Load()
	load, _ := os.ReadFile("/proc/loadavg")
	for b.Loop() {
		for _, conns := range []int{1, 64, 256} {
			var s, r []wrkResult
			for range 2 { // interleaved rounds
				s = append(s, runWrk(b, wrk, svc, conns))
				r = append(r, runWrk(b, wrk, bare, conns))
			}
			sm, rm := mean(s), mean(r)
			b.ReportMetric(sm.rate, fmt.Sprintf("c%d-binderbuild-req/s", conns))
			b.ReportMetric(rm.rate, fmt.Sprintf("c%d-bare-req/s", conns))
			b.ReportMetric(sm.rate/rm.rate, fmt.Sprintf("c%d-ratio", conns))
			b.ReportMetric(sm.p99.Seconds()*1000, fmt.Sprintf("c%d-binderbuild-p99-ms", conns))
			b.ReportMetric(rm.p99.Seconds()*1000, fmt.Sprintf("c%d-bare-p99-ms", conns))
			b.ReportMetric(sm.p50.Seconds()*1000, fmt.Sprintf("c%d-binderbuild-p50-ms", conns))
			b.ReportMetric(rm.p50.Seconds()*1000, fmt.Sprintf("c%d-bare-p50-ms", conns))
		}
	}
	b.Logf("load average before: %s", strings.TrimSpace(string(load)))
	if calls := f.github.calls.Load() - gh + f.registry.calls.Load() - reg; calls != 0 {
		b.Errorf("%d GitHub and registry calls during warm requests, want 0", calls)
	}
}

func freeAddrB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs cmd with the test's environment plus env, its output
// discarded, until the benchmark ends.
func start(b *testing.B, cmd *exec.Cmd, env ...string) {
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

func waitServing(b *testing.B, url string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s does not answer: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type wrkResult struct {
	rate     float64
	p50, p99 time.Duration
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency = regexp.MustCompile(`^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// runWrk runs wrk for 5 s with conns connections on two threads (one for
// a single connection).
func runWrk(b *testing.B, wrk, url string, conns int) wrkResult {
	out, err := exec.Command(wrk, fmt.Sprintf("-t%d", min(conns, 2)), fmt.Sprintf("-c%d", conns), "-d5s", "--latency",
		"-H", "Accept: text/event-stream", url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	var res wrkResult
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		b.Fatalf("wrk printed no rate:\n%s", out)
	}
	res.rate, _ = strconv.ParseFloat(string(m[1]), 64)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := wrkLatency.FindStringSubmatch(sc.Text()); m != nil {
			d, _ := time.ParseDuration(m[2] + m[3])
			if m[1] == "50" {
				res.p50 = d
			} else {
				res.p99 = d
			}
		}
	}
	if strings.Contains(string(out), "Non-2xx") {
		b.Fatalf("%s answered errors:\n%s", url, out)
	}
	return res
}

func mean(rs []wrkResult) wrkResult {
	var m wrkResult
	for _, r := range rs {
		m.rate += r.rate / float64(len(rs))
		m.p50 += r.p50 / time.Duration(len(rs))
		m.p99 += r.p99 / time.Duration(len(rs))
	}
	return m
}
