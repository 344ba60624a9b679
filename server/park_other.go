//go:build !unix

package server

import "net"

// tryWrite writes nothing here: without non-blocking writes, writeOut
// writes every chunk.
func tryWrite(net.Conn, []byte) (int, error) { return 0, nil }

// peerClosed cannot peek at sockets here: a client that left is noticed at
// its next write.
func peerClosed(net.Conn) bool { return false }
