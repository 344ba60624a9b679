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
	"time"

	"github.com/binderbuild/binderbuild/events"
)

// Waiting clients are parked: once a request follows a build, its HTTP/1.1
// connection is taken over from net/http and handed to the build's fan-out,
// one goroutine per build that writes every client's events. A waiting client
// then costs its socket and a cursor instead of a goroutine, a request and
// three buffers (about 36 KiB). Disconnects are noticed at the next write or
// heartbeat.
//
// Writes never block the fan-out: each client takes what its socket accepts
// now (tryWrite), and a client whose socket is full gets a goroutine that
// writes the rest of its chunk as the client reads (writeOut), while the
// fan-out goes on with the others. So a client that does not read delays
// only itself, and one that reads nothing for Config.ClientStallTimeout is
// dropped.

type parked struct {
	conn   net.Conn
	cursor int    // the next event of the log to send
	out    []byte // the unsent rest of a chunk shared by the round's clients
	// final marks out as the last event and the end of the body: the
	// client is closed once it is sent.
	final bool
	// busy is set while writeOut owns out and err; err is why the
	// connection failed.
	busy atomic.Bool
	err  error
	// written counts the bytes of the body handed to the connection, as
	// the access log reports them: without the chunk framing.
	written int64
	// ended runs once when the client's connection is closed, with
	// written.
	ended func(written int64)
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
// the build's fan-out; when the fan-out closes it, leave runs and then the
// access log's line is written. It reports false, leaving the request
// alone, when the connection cannot be taken over (HTTP/2, a test
// recorder) or the stream has started already.
func (s *streams) park(r *http.Request, st *stream, log *events.Log, image string, leave func()) bool {
	if st.written || r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	conn, _, err := st.rc.Hijack()
	if err != nil {
		return false
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = st.w.Header().Write(&head) // writes to a buffer cannot fail
	head.WriteString("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	_ = conn.SetDeadline(time.Time{})
	s.parked.Add(1)
	logged := endLater(st.w)
	c := &parked{conn: conn, out: head.Bytes(), ended: func(written int64) {
		leave()
		if logged != nil {
			logged(written)
		}
	}}
	for !s.fanoutFor(log, image).add(c) {
		// That fan-out just ended; the next one serves the finished log.
	}
	return true
}

// fanoutFor returns the running fan-out of log, starting one if needed.
func (s *streams) fanoutFor(log *events.Log, image string) *fanout {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	f.poke()
	return true
}

// poke wakes the fan-out for another round.
func (f *fanout) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// runFanout writes the log to every client until the build has ended and
// every client has its last event or is gone.
func (s *streams) runFanout(f *fanout) {
	var clients []*parked
	var last []byte // the last event and the end of the body, once done
	var lastSize int64
	for {
		f.mu.Lock()
		clients = append(clients, f.pending...)
		f.pending = nil
		f.mu.Unlock()
		// Taken before writing, so that an event appended during the round
		// wakes the next one.
		_, _, done, changed := f.log.Read(f.log.Len())
		if done && last == nil {
			_, err := f.log.Result()
			ev := s.result(s.ctx, err, f.image)
			last = append(encodeChunk([]events.Event{ev}), "0\r\n\r\n"...)
			lastSize = eventSize(ev)
		}
		s.writeRound(f, &clients, last, lastSize)
		if done && len(clients) == 0 {
			if s.endFanout(f) {
				return
			}
			continue // clients arrived while ending
		}
		select {
		case <-changed:
		case <-f.wake: // a client arrived, or a writeOut ended
		case <-s.beat.C():
			clients = s.heartbeatAll(f, clients)
		case <-s.ctx.Done():
			for _, c := range clients {
				s.closeClient(c)
			}
			s.endFanout(f)
			return
		}
	}
}

// writeRound gives every client the events it has not seen (and, once the
// build is done, last), dropping clients whose connection failed. Clients at
// the same cursor share one encoded chunk; many clients are written by one
// goroutine per CPU.
func (s *streams) writeRound(f *fanout, clients *[]*parked, last []byte, lastSize int64) {
	type chunk struct {
		data []byte
		next int
		size int64 // of the events without the chunk framing
	}
	// Only clients without a write in flight take new events: encoding
	// from the cursor of one that stalled long ago would cost every round.
	chunks := make(map[int]chunk, 1)
	for _, c := range *clients {
		if _, ok := chunks[c.cursor]; !ok && !c.busy.Load() {
			evs, next, _, _ := f.log.Read(c.cursor)
			chunks[c.cursor] = chunk{encodeChunk(evs), next, eventsSize(evs)}
		}
	}
	if last != nil {
		// The log is done: a client that reaches its end in this round gets
		// last now, not at the next heartbeat.
		end := f.log.Len()
		if _, ok := chunks[end]; !ok {
			chunks[end] = chunk{next: end}
		}
	}
	refill := func(c *parked) {
		ch, ok := chunks[c.cursor]
		switch {
		case !ok: // its write ended during this round: the next round
		case len(ch.data) > 0:
			c.out, c.cursor = ch.data, ch.next
			c.written += ch.size
		case last != nil:
			c.out, c.final = last, true
			c.written += lastSize
		}
	}
	eachPart(*clients, func(part []*parked) {
		for _, c := range part {
			if !s.feed(f, c, refill) {
				s.closeClient(c)
				c.conn = nil
			}
		}
	})
	kept := (*clients)[:0]
	for _, c := range *clients {
		if c.conn != nil {
			kept = append(kept, c)
		}
	}
	*clients = kept
}

// feed writes the client its pending bytes and what refill gives it next,
// as far as its socket takes them now; the rest goes to writeOut. It
// reports false when the client is to be closed: its connection failed or
// its last event is out.
func (s *streams) feed(f *fanout, c *parked, refill func(*parked)) bool {
	if c.busy.Load() {
		return true
	}
	if c.err != nil {
		return false
	}
	for {
		if len(c.out) == 0 {
			if c.final {
				return false
			}
			refill(c)
			if len(c.out) == 0 {
				return true
			}
		}
		n, err := tryWrite(c.conn, c.out)
		c.out = c.out[n:]
		if err != nil {
			return false
		}
		if len(c.out) > 0 {
			c.busy.Store(true)
			go s.writeOut(f, c)
			return true
		}
	}
}

// writeOut writes the rest of a client's chunk as the client reads it,
// then wakes the fan-out. A client that takes nothing for
// ClientStallTimeout fails.
func (s *streams) writeOut(f *fanout, c *parked) {
	defer f.poke()
	defer c.busy.Store(false)
	for len(c.out) > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(s.stall))
		n, err := c.conn.Write(c.out)
		c.out = c.out[n:]
		if err != nil && (n == 0 || !isTimeout(err)) {
			c.err = err
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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

// endFanout retires the fan-out. It reports false when clients were added
// meanwhile (they get the whole log first).
func (s *streams) endFanout(f *fanout) bool {
	f.mu.Lock()
	if len(f.pending) > 0 {
		f.mu.Unlock()
		return false
	}
	f.closed = true
	f.mu.Unlock()
	s.mu.Lock()
	delete(s.fanouts, f.log)
	s.mu.Unlock()
	return true
}

// closeClient ends the client's connection; a writeOut still running then
// fails at once.
func (s *streams) closeClient(c *parked) {
	c.conn.Close()
	s.parked.Add(-1)
	s.following.Add(-1)
	c.ended(c.written)
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

// eventSize is the size of e's frame on the stream.
func eventSize(e events.Event) int64 {
	return int64(len(dataPrefix) + len(e.Data) + len(eventEnd))
}

func eventsSize(evs []events.Event) int64 {
	var n int64
	for _, e := range evs {
		n += eventSize(e)
	}
	return n
}

func frameChunk(p []byte) []byte {
	out := make([]byte, 0, len(p)+16)
	out = strconv.AppendInt(out, int64(len(p)), 16)
	out = append(out, "\r\n"...)
	out = append(out, p...)
	return append(out, "\r\n"...)
}

var heartbeatChunk = frameChunk(heartbeatBytes)

// heartbeatAll sends the heartbeat to clients that are up to date and
// drops those that have gone.
func (s *streams) heartbeatAll(f *fanout, clients []*parked) []*parked {
	kept := clients[:0]
	for _, c := range clients {
		if !c.busy.Load() && len(c.out) == 0 {
			if peerClosed(c.conn) {
				s.closeClient(c)
				continue
			}
			c.out = heartbeatChunk
			c.written += int64(len(heartbeatBytes))
		}
		if !s.feed(f, c, func(*parked) {}) {
			s.closeClient(c)
			continue
		}
		kept = append(kept, c)
	}
	return kept
}
