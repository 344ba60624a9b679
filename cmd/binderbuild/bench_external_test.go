package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
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
	bin, err := filepath.Abs(*benchBinary)
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
	svcPID := start(b, exec.Command(bin, "serve"), append(f.env.list(), "BINDERBUILD_LISTEN="+svcAddr)...)
	barePID := start(b, exec.Command(os.Args[0], "-test.run=^$"), bareEnv+"="+bareAddr, bareFrameEnv+"="+frame)
	svc, bare := "http://"+svcAddr+warmPath, "http://"+bareAddr+warmPath
	for _, u := range []string{svc, bare} {
		waitServing(b, u)
	}
	gh, reg := f.github.calls.Load(), f.registry.calls.Load()
	load, _ := os.ReadFile("/proc/loadavg")
	for b.Loop() {
		for _, conns := range wrkConns(b) {
			var s, r []wrkResult
			for range 2 { // interleaved rounds
				s = append(s, runWrk(b, wrk, svc, svcPID, conns))
				r = append(r, runWrk(b, wrk, bare, barePID, conns))
			}
			sm, rm := mean(s), mean(r)
			b.ReportMetric(sm.rate, fmt.Sprintf("c%d-binderbuild-req/s", conns))
			b.ReportMetric(rm.rate, fmt.Sprintf("c%d-bare-req/s", conns))
			b.ReportMetric(sm.rate/rm.rate, fmt.Sprintf("c%d-ratio", conns))
			b.ReportMetric(sm.p99.Seconds()*1000, fmt.Sprintf("c%d-binderbuild-p99-ms", conns))
			b.ReportMetric(rm.p99.Seconds()*1000, fmt.Sprintf("c%d-bare-p99-ms", conns))
			b.ReportMetric(sm.p50.Seconds()*1000, fmt.Sprintf("c%d-binderbuild-p50-ms", conns))
			b.ReportMetric(sm.cpu, fmt.Sprintf("c%d-binderbuild-cpu-us/req", conns))
			b.ReportMetric(rm.cpu, fmt.Sprintf("c%d-bare-cpu-us/req", conns))
			b.ReportMetric(rm.p50.Seconds()*1000, fmt.Sprintf("c%d-bare-p50-ms", conns))
		}
	}
	b.Logf("load average before: %s", strings.TrimSpace(string(load)))
	if calls := f.github.calls.Load() - gh + f.registry.calls.Load() - reg; calls != 0 {
		b.Errorf("%d GitHub and registry calls during warm requests, want 0", calls)
	}
}

// benchBinary is the binary BenchmarkWarmHitExternal measures: another
// build can be compared with -args -bench-binary=/path/to/binderbuild.
var benchBinary = flag.String("bench-binary", "../../bin/binderbuild", "binderbuild binary measured by BenchmarkWarmHitExternal")

// wrkConnsFlag picks the connection counts of BenchmarkWarmHitExternal,
// e.g. `go test -bench WarmHitExternal ./cmd/binderbuild -args -wrk-conns=64`.
var wrkConnsFlag = flag.String("wrk-conns", "1,64,256", "comma list of wrk connection counts of BenchmarkWarmHitExternal")

func wrkConns(b *testing.B) []int {
	var out []int
	for _, f := range strings.Split(*wrkConnsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("-wrk-conns: %q is not a connection count", f)
		}
		out = append(out, n)
	}
	return out
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
// discarded, until the benchmark ends, and returns its process id.
func start(b *testing.B, cmd *exec.Cmd, env ...string) int {
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
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

// wrkResult is one wrk run: requests per second, latency percentiles and
// the server's CPU time per request in µs. CPU per request does not depend
// on what else the machine runs, unlike the rate.
type wrkResult struct {
	rate     float64
	p50, p99 time.Duration
	cpu      float64
}

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkCount   = regexp.MustCompile(`([0-9]+) requests in`)
	wrkLatency = regexp.MustCompile(`^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// runWrk runs wrk for 5 s with conns connections on two threads (one for
// a single connection) against url, served by process pid.
func runWrk(b *testing.B, wrk, url string, pid, conns int) wrkResult {
	cpu := cpuTime(b, pid)
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
	if m := wrkCount.FindSubmatch(out); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		res.cpu = float64((cpuTime(b, pid) - cpu).Microseconds()) / float64(max(n, 1))
	}
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

// cpuTime is the user and system CPU time process pid has used, from
// /proc/<pid>/stat.
func cpuTime(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name in parentheses; utime and stime are
	// the 14th and 15th fields, in clock ticks of 1/100 s.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func mean(rs []wrkResult) wrkResult {
	var m wrkResult
	for _, r := range rs {
		m.rate += r.rate / float64(len(rs))
		m.p50 += r.p50 / time.Duration(len(rs))
		m.p99 += r.p99 / time.Duration(len(rs))
		m.cpu += r.cpu / float64(len(rs))
	}
	return m
}

// BenchmarkIdleConnectionMemory measures what an idle keep-alive
// connection costs each server after one warm build_only request: the
// growth of its resident memory over 2000 such connections, per
// connection, for the real binary and for the bare handler.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const conns = 2000
	bin, err := filepath.Abs(*benchBinary)
	if err != nil {
		b.Fatal(err)
	}
	f := newFixture(b)
	image := binderbuild.ImageName(f.prefix, "org-repo", headSHA)
	frame := "data: " + `{"phase": "ready", "imageName": "` + image + `", "message": "Done! Found built image\n"}` + "\n\n"
	svcAddr, bareAddr := freeAddrB(b), freeAddrB(b)
	svcPID := start(b, exec.Command(bin, "serve"), append(f.env.list(), "BINDERBUILD_LISTEN="+svcAddr)...)
	barePID := start(b, exec.Command(os.Args[0], "-test.run=^$"), bareEnv+"="+bareAddr, bareFrameEnv+"="+frame)
	for _, a := range []string{svcAddr, bareAddr} {
		waitServing(b, "http://"+a+warmPath)
	}
	gh, reg := f.github.calls.Load(), f.registry.calls.Load()
	defer func() {
		if calls := f.github.calls.Load() - gh + f.registry.calls.Load() - reg; calls != 0 {
			b.Errorf("%d GitHub and registry calls during warm requests, want 0", calls)
		}
	}()
	for b.Loop() {
		svc := idleConnBytes(b, svcAddr, svcPID, conns)
		bare := idleConnBytes(b, bareAddr, barePID, conns)
		b.ReportMetric(svc, "binderbuild-bytes/idle-conn")
		b.ReportMetric(bare, "bare-bytes/idle-conn")
		b.ReportMetric(svc-bare, "extra-bytes/idle-conn")
	}
}

// idleConnBytes opens n connections to addr, makes one warm request on
// each and leaves it open, and returns the growth of process pid's
// resident memory per connection.
func idleConnBytes(b *testing.B, addr string, pid, n int) float64 {
	before := residentBytes(b, pid)
	req := "GET " + warmPath + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/event-stream\r\n\r\n"
	open := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		open = append(open, c)
		if _, err := c.Write([]byte(req)); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatalf("%s: %v", addr, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"phase": "ready"`)) {
			b.Fatalf("%s: %s, %v: %s, want a warm cache hit", addr, resp.Status, err, body)
		}
	}
	time.Sleep(time.Second) // let the servers settle
	return float64(residentBytes(b, pid)-before) / float64(n)
}

// residentBytes is process pid's resident set size, from /proc.
func residentBytes(b *testing.B, pid int) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")))
			return n << 10
		}
	}
	b.Fatal("no VmRSS in /proc/<pid>/status")
	return 0
}
