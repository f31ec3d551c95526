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

// peeker cannot look at a socket here.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return nil }

// dead cannot tell here; a dead connection fails when used.
func (*peeker) dead() bool { return false }
