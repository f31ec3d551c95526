package httpapi

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// watchClientGone closes upstream if the client hangs up while the proxy
// waits for the upstream's first response byte (a long prompt is being
// processed), so an abandoned request stops costing the model. It peeks at
// the client socket (MSG_PEEK: nothing is consumed, so a pipelined request
// stays for the server to read). stop ends the watch and must be called
// before the response is written; it tells whether the client was gone.
func watchClientGone(client, upstream net.Conn) (stop func() (gone bool)) {
	// The poller is woken by a deadline that must take effect at once,
	// so it is set on the socket itself, not through a coarse deadline.
	cc, _ := client.(*coarseConn)
	if cc != nil {
		client = cc.Conn
	}
	sc, ok := client.(syscall.Conn)
	if !ok {
		return func() bool { return false }
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return func() bool { return false }
	}
	var stopped, gone atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [1]byte
		_ = rc.Read(func(fd uintptr) bool {
			if stopped.Load() {
				return true
			}
			n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EAGAIN || err == syscall.EINTR:
				return false // nothing yet: wait until the socket is readable
			case n == 0 || err != nil:
				gone.Store(true)
				_ = upstream.Close() // EOF or reset: the client is gone
			}
			return true // gone, or the client sent more: stop watching
		})
	}()
	return func() bool {
		stopped.Store(true)
		_ = client.SetReadDeadline(time.Now()) // wake the poller
		<-done
		_ = client.SetReadDeadline(time.Time{}) // the server sets its own next
		if cc != nil {
			cc.forget()
		}
		return gone.Load()
	}
}

// clientGone tells whether the client of conn has hung up (EOF or reset
// waiting to be read), without consuming anything: a request that waited
// for its instance to wake need not be sent once its client left.
func clientGone(conn net.Conn) bool {
	if cc, ok := conn.(*coarseConn); ok {
		conn = cc.Conn
	}
	return peekSocket(conn) == sockClosed
}

// connDead tells whether an idle pooled connection is no use: its peer
// closed or reset it, or sent bytes nobody asked for. Nothing is
// consumed, and nothing waits.
func connDead(conn net.Conn) bool { return newPeeker(conn).dead() }

// sockState is what peekSocket saw.
type sockState int

const (
	sockUnknown sockState = iota // no socket to look at
	sockEmpty                    // nothing to read yet
	sockData                     // bytes to read
	sockClosed                   // EOF or a reset: the peer is gone
)

// peekSocket looks at what conn's socket holds, without consuming or
// waiting.
func peekSocket(conn net.Conn) sockState { return newPeeker(conn).state() }

// peekFD is peekSocket on a socket's descriptor, held open by the
// caller (RawConn.Control). The call neither blocks nor waits.
func peekFD(fd int) sockState {
	var buf [1]byte
	n, _, err := syscall.Recvfrom(fd, buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return sockEmpty
	case err == nil && n > 0:
		return sockData
	}
	return sockClosed
}

// peeker looks at one connection's socket as peekSocket does, with no
// allocation per look: the syscall is made through the connection, which
// holds the descriptor open meanwhile.
type peeker struct {
	rc   syscall.RawConn
	look func(fd uintptr) // p.peek, bound once
	st   sockState
}

// newPeeker returns a peeker for conn, or nil if conn has no socket.
func newPeeker(conn net.Conn) *peeker {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{rc: rc}
	p.look = p.peek
	return p
}

func (p *peeker) peek(fd uintptr) { p.st = peekFD(int(fd)) }

// state is peekSocket for the peeker's connection (sockUnknown for a nil
// peeker).
func (p *peeker) state() sockState {
	if p == nil {
		return sockUnknown
	}
	p.st = sockUnknown
	_ = p.rc.Control(p.look)
	return p.st
}

// dead is connDead for the peeker's connection.
func (p *peeker) dead() bool {
	st := p.state()
	return st == sockClosed || st == sockData
}
