package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/binderbuild/binderbuild"
	"github.com/binderbuild/binderbuild/builder"
	"github.com/binderbuild/binderbuild/events"
)

// feedExec appends the events it receives to the build's log until lines
// is closed.
type feedExec chan events.Event

func (f feedExec) Run(ctx context.Context, _ binderbuild.BuildRequest, log *events.Log) error {
	for {
		select {
		case e, ok := <-f:
			if !ok {
				return nil
			}
			log.Append(e)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// BenchmarkSlowClients measures how long a log line takes to reach a client
// that reads, alone and with 100 clients of the same build that never read.
// The p99 with them should stay within 2x of the p99 without.
func BenchmarkSlowClients(b *testing.B) {
	for _, slow := range []int{0, 100} {
		b.Run(fmt.Sprintf("nonreading=%d", slow), func(b *testing.B) { benchSlowClients(b, slow) })
	}
}

func benchSlowClients(b *testing.B, slow int) {
	lines := make(feedExec)
	defer close(lines)
	shared := builder.NewShared(b.Context(), lines, time.Minute)
	srv := New(b.Context(), Config{APIOnly: true, ImagePrefix: "r/", ClientStallTimeout: time.Hour},
		Deps{Providers: []Provider{ghLike(map[string]string{"HEAD": sha})}, Images: present(), Builder: shared})
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener = smallSendBuffers{ts.Listener}
	ts.Start()
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	const request = "GET /build/gh/org/repo/HEAD?build_only=true HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
	smallBuffer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	for range slow {
		conn, err := smallBuffer.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, request)
	}
	for srv.streams.parked.Load() < int64(slow) {
		time.Sleep(time.Millisecond)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, request)
	r := bufio.NewReaderSize(conn, 64<<10)
	pad := strings.Repeat("x", 1000)
	send := func(i int) time.Duration {
		marker := fmt.Sprintf(`"%d %s`, i, pad[:8])
		start := time.Now()
		lines <- events.Message("building", fmt.Sprintf("%d %s", i, pad))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if strings.Contains(line, marker) {
				return time.Since(start)
			}
		}
	}
	// 300 KB first: more than the non-reading clients' sockets hold, so
	// that they have stopped taking data when the measurement starts.
	for i := range 300 {
		send(-1 - i)
	}
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		latencies = append(latencies, send(i))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
}
