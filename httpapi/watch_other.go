//go:build !linux

package httpapi

import "net"

// watchClientGone is a no-op here: a client that hangs up before the
// first response byte is noticed when the first byte is relayed.
func watchClientGone(_, _ net.Conn) (stop func() (gone bool)) { return func() bool { return false } }

// clientGone cannot tell here; the answer's write notices.
func clientGone(net.Conn) bool { return false }

// connDead cannot tell here; a dead connection fails when used.
func connDead(net.Conn) bool { return false }

// fdDead cannot tell here.
func fdDead(int) bool { return false }

// socketFD has no use here: send and dead go through the connection.
func socketFD(net.Conn) int { return -1 }

// writevFD is never called here (socketFD gives no descriptor).
func writevFD(int, []byte, []byte) int { return 0 }
