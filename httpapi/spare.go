package httpapi

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// spareMaxAge is how long a pre-dialed connection may wait for a stream.
// llama-server drops a connection that sends no request for 5s; an older
// spare is closed rather than risked.
const spareMaxAge = 2 * time.Second

// spareIdle is how long a spare's dialing goroutine waits for work before
// it ends, closing the spare; the next stream starts it again.
const spareIdle = 2 * time.Second

// spare holds at most one pre-dialed, never used connection to one
// upstream for the next streamed request, so that a stream does not wait
// for a dial. A stream takes the spare (or dials if there is none) and
// wakes the spare's dialing goroutine to dial a replacement. One spare per
// upstream keeps llama-server's HTTP threads, each of which an idle
// connection occupies, free for others.
type spare struct {
	addr    string
	idleFor time.Duration // spareIdle, shorter in tests
	wake    chan struct{} // capacity 1: a replacement is wanted
	mu      sync.Mutex
	conn    net.Conn // nil: none
	at      time.Time
	running bool // the dialing goroutine runs
	closed  bool
}

// spareFor returns the spare slot of addr.
func (u *upstreams) spareFor(addr string) *spare {
	if sp, ok := u.spares.Load(addr); ok {
		return sp.(*spare)
	}
	idle := u.spareIdle
	if idle <= 0 {
		idle = spareIdle
	}
	sp, _ := u.spares.LoadOrStore(addr, &spare{addr: addr, idleFor: idle, wake: make(chan struct{}, 1)})
	return sp.(*spare)
}

// streamConn returns a connection to addr for one streamed request: the
// pre-dialed spare if there is a fresh one (reused is then true: it may
// have been closed by the upstream meanwhile), else a new dial. Either
// way a replacement spare is dialed in the background.
func (u *upstreams) streamConn(addr string) (conn net.Conn, reused bool, err error) {
	sp := u.spareFor(addr)
	sp.mu.Lock()
	c, at := sp.conn, sp.at
	sp.conn = nil
	if !sp.closed {
		select {
		case sp.wake <- struct{}{}:
		default:
		}
		if !sp.running {
			sp.running = true
			go sp.run()
		}
	}
	sp.mu.Unlock()
	if c != nil {
		if time.Since(at) < spareMaxAge {
			return c, true, nil
		}
		_ = c.Close()
	}
	c, err = dialUpstream(addr)
	return c, false, err
}

// liveConn is streamConn with a pre-dialed connection looked at first
// (one syscall, no wait): one closed meanwhile (its process died, say) is
// replaced by a new dial before anything is sent on it.
func (u *upstreams) liveConn(addr string) (net.Conn, error) {
	c, reused, err := u.streamConn(addr)
	if err != nil || !reused || !connDead(c) {
		return c, err
	}
	_ = c.Close()
	return dialUpstream(addr)
}

// run dials a spare whenever one is wanted and none is held, until the
// slot is closed or spareIdle passes without a stream; then it closes the
// spare it holds.
func (sp *spare) run() {
	idle := time.NewTimer(sp.idleFor)
	defer idle.Stop()
	for {
		select {
		case <-sp.wake:
			if !sp.refill() {
				return
			}
			idle.Reset(sp.idleFor)
		case <-idle.C:
			sp.mu.Lock()
			if len(sp.wake) > 0 && !sp.closed {
				sp.mu.Unlock()
				idle.Reset(sp.idleFor)
				continue
			}
			// No stream for a while: the spare would soon be too old to
			// use, and its upstream may be gone for good (a restarted
			// instance listens elsewhere). Close it rather than keep it.
			c := sp.conn
			sp.conn, sp.running = nil, false
			sp.mu.Unlock()
			if c != nil {
				_ = c.Close()
			}
			return
		}
	}
}

// refill dials a spare if none is held; false means the slot is closed.
func (sp *spare) refill() bool {
	sp.mu.Lock()
	held, closed := sp.conn != nil, sp.closed
	sp.mu.Unlock()
	if closed {
		return false
	}
	if held {
		return true
	}
	c, err := dialUpstream(sp.addr)
	if err != nil {
		return true
	}
	sp.mu.Lock()
	if closed := sp.closed; closed || sp.conn != nil {
		sp.mu.Unlock()
		_ = c.Close()
		return !closed
	}
	sp.conn, sp.at = c, time.Now()
	sp.mu.Unlock()
	return true
}

// close closes the spare and ends its dialing goroutine.
func (sp *spare) close() {
	sp.mu.Lock()
	c := sp.conn
	sp.conn, sp.closed = nil, true
	sp.mu.Unlock()
	select {
	case sp.wake <- struct{}{}: // let run notice
	default:
	}
	if c != nil {
		_ = c.Close()
	}
}

// closeSpares closes every spare connection; no new ones are dialed for
// the upstreams known so far.
func (u *upstreams) closeSpares() {
	u.spares.Range(func(_, sp any) bool {
		sp.(*spare).close()
		return true
	})
}

// staleConn reports whether err is how a connection the upstream had
// already closed fails: such a request never reached the model.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
