package server

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/binderbuild/binderbuild/events"
)

// Waiting clients are parked: once a request follows a build, its HTTP/1.1
// connection is taken over from net/http and handed to the build's fan-out,
// one goroutine per build that writes every client's events. A waiting client
// then costs its socket and a cursor instead of a goroutine, a request and
// three buffers (about 36 KiB). Disconnects are noticed at the next write or
// heartbeat.

// writeTimeout bounds one write to a parked client; a client that reads
// slower than that is dropped rather than holding up the others.
const writeTimeout = 10 * time.Second

type parked struct {
	conn   net.Conn
	cursor int
	count  *atomic.Int64 // the server's parked clients
}

// close ends the client's connection.
func (c *parked) close() {
	c.conn.Close()
	c.count.Add(-1)
}

// fanout writes one build's log to its parked clients.
type fanout struct {
	log   *events.Log
	image string

	mu      sync.Mutex
	pending []*parked // added since the last round
	closed  bool      // the fan-out has ended; new clients are not taken
	wake    chan struct{}
}

// park takes over the connection of a request following log and hands it to
// the build's fan-out. It reports false, leaving the request alone, when the
// connection cannot be taken over (HTTP/2, a test recorder) or the stream
// has started already.
func (s *Server) park(w http.ResponseWriter, r *http.Request, st *stream, log *events.Log, image string) bool {
	if st.written || r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	conn, _, err := st.rc.Hijack()
	if err != nil {
		return false
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = w.Header().Write(&head) // writes to a buffer cannot fail
	head.WriteString("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	_ = conn.SetDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(head.Bytes()); err != nil {
		conn.Close()
		return true
	}
	s.parkedClients.Add(1)
	c := &parked{conn: conn, count: &s.parkedClients}
	for !s.fanoutFor(log, image).add(c) {
		// That fan-out just ended; the next one serves the finished log.
	}
	return true
}

// fanoutFor returns the running fan-out of log, starting one if needed.
func (s *Server) fanoutFor(log *events.Log, image string) *fanout {
	s.fanoutMu.Lock()
	defer s.fanoutMu.Unlock()
	if f, ok := s.fanouts[log]; ok {
		return f
	}
	f := &fanout{log: log, image: image, wake: make(chan struct{}, 1)}
	s.fanouts[log] = f
	go s.runFanout(f)
	return f
}

func (f *fanout) add(c *parked) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.pending = append(f.pending, c)
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return true
}

// runFanout writes the log to every client until the build ends, then the
// last event, and closes the connections.
func (s *Server) runFanout(f *fanout) {
	var clients []*parked
	for {
		f.mu.Lock()
		clients = append(clients, f.pending...)
		f.pending = nil
		f.mu.Unlock()
		// Taken before writing, so that an event appended during the round
		// wakes the next one.
		_, _, _, changed := f.log.Read(f.log.Len())
		done := s.writeRound(f, &clients)
		if done {
			if s.endFanout(f, &clients) {
				return
			}
			continue // clients arrived while ending
		}
		select {
		case <-changed:
		case <-f.wake:
		case <-s.beat.C():
			clients = heartbeatAll(clients)
		case <-s.ctx.Done():
			closeAll(clients)
			s.endFanout(f, new([]*parked))
			return
		}
	}
}

// writeRound sends every client the events it has not seen, dropping those
// that fail. Clients at the same cursor share one encoded chunk; many
// clients are written by one goroutine per CPU.
func (s *Server) writeRound(f *fanout, clients *[]*parked) (done bool) {
	type chunk struct {
		data []byte
		next int
	}
	chunks := make(map[int]chunk, 1)
	for _, c := range *clients {
		if _, ok := chunks[c.cursor]; !ok {
			evs, next, _, _ := f.log.Read(c.cursor)
			chunks[c.cursor] = chunk{encodeChunk(evs), next}
		}
	}
	_, _, done, _ = f.log.Read(f.log.Len())
	send := func(part []*parked) {
		for _, c := range part {
			ch := chunks[c.cursor]
			if len(ch.data) > 0 && write(c.conn, ch.data) != nil {
				c.close()
				c.conn = nil
				continue
			}
			c.cursor = ch.next
		}
	}
	eachPart(*clients, send)
	kept := (*clients)[:0]
	for _, c := range *clients {
		if c.conn != nil {
			kept = append(kept, c)
		}
	}
	*clients = kept
	return done
}

// parallelWrites is the number of clients above which a round is split.
const parallelWrites = 256

// eachPart runs fn over parts of clients, one per CPU when there are many.
func eachPart(clients []*parked, fn func([]*parked)) {
	n := runtime.GOMAXPROCS(0)
	if len(clients) < parallelWrites || n < 2 {
		fn(clients)
		return
	}
	var wg sync.WaitGroup
	size := (len(clients) + n - 1) / n
	for start := 0; start < len(clients); start += size {
		part := clients[start:min(start+size, len(clients))]
		wg.Go(func() { fn(part) })
	}
	wg.Wait()
}

// endFanout sends the last event and closes every client. It reports false
// when clients were added meanwhile (they get the whole log first).
func (s *Server) endFanout(f *fanout, clients *[]*parked) bool {
	f.mu.Lock()
	if len(f.pending) > 0 {
		f.mu.Unlock()
		return false
	}
	f.closed = true
	f.mu.Unlock()
	s.fanoutMu.Lock()
	delete(s.fanouts, f.log)
	s.fanoutMu.Unlock()
	_, err := f.log.Result()
	last := encodeChunk([]events.Event{s.resultEvent(s.ctx, err, f.image)})
	last = append(last, "0\r\n\r\n"...)
	for _, c := range *clients {
		_ = write(c.conn, last)
		c.close()
	}
	return true
}

// encodeChunk is one chunk of the chunked transfer coding holding evs.
func encodeChunk(evs []events.Event) []byte {
	if len(evs) == 0 {
		return nil
	}
	var body bytes.Buffer
	for _, e := range evs {
		body.Write(dataPrefix)
		body.Write(e.Data)
		body.Write(eventEnd)
	}
	return frameChunk(body.Bytes())
}

func frameChunk(p []byte) []byte {
	out := make([]byte, 0, len(p)+16)
	out = strconv.AppendInt(out, int64(len(p)), 16)
	out = append(out, "\r\n"...)
	out = append(out, p...)
	return append(out, "\r\n"...)
}

var heartbeatChunk = frameChunk(heartbeatBytes)

func write(c net.Conn, p []byte) error {
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.Write(p)
	return err
}

// heartbeatAll sends the heartbeat and drops clients that have gone.
func heartbeatAll(clients []*parked) []*parked {
	kept := clients[:0]
	for _, c := range clients {
		if peerClosed(c.conn) || write(c.conn, heartbeatChunk) != nil {
			c.close()
			continue
		}
		kept = append(kept, c)
	}
	return kept
}

func closeAll(clients []*parked) {
	for _, c := range clients {
		c.close()
	}
}

// peerClosed peeks at the socket without waiting: a client that closed its
// end has sent a FIN (or a reset), which a write alone notices only one
// write later.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		closed = (n == 0 && err == nil) || errors.Is(err, unix.ECONNRESET)
		return true
	})
	return closed
}
