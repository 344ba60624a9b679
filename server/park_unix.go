//go:build unix

package server

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tryWrite writes what the socket takes of p now, without waiting. Other
// connections (TLS) take nothing here: writeOut writes to them.
func tryWrite(c net.Conn, p []byte) (int, error) {
	raw := rawConn(c)
	if raw == nil {
		return 0, nil
	}
	var n int
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		n, werr = unix.Write(int(fd), p)
		if errors.Is(werr, unix.EAGAIN) || errors.Is(werr, unix.EINTR) {
			n, werr = 0, nil
		}
		return true // never wait for the socket to drain
	})
	n = max(n, 0)
	if err != nil {
		return n, err
	}
	return n, werr
}

// peerClosed peeks at the socket without waiting: a client that closed its
// end has sent a FIN (or a reset), which a write alone notices only one
// write later.
func peerClosed(c net.Conn) bool {
	raw := rawConn(c)
	if raw == nil {
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

func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
