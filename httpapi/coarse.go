package httpapi

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// coarseListener hands out coarseConns.
type coarseListener struct {
	net.Listener
	slack time.Duration
}

func (l coarseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coarseConn{Conn: c, slack: int64(l.slack)}, nil
}

// coarseSlack is how much later than asked a client connection's deadline
// may fall: a sixteenth of the shortest timeout, at most a second (the
// defaults are a minute). Zero turns coarse deadlines off.
func coarseSlack(cfg Config) time.Duration {
	shortest := min(cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout)
	slack := min(shortest/16, time.Second)
	if slack < time.Millisecond {
		return 0
	}
	return slack
}

// coarseConn is a client connection whose deadlines move at most once per
// slack. fasthttp moves them three times per request (the idle, read and
// write timeouts), and each move costs a timer update in the runtime; at
// thousands of requests a second per connection that is a measurable
// share of the proxy's CPU. A deadline asked for is kept as it is when the
// one in force is no earlier and at most slack later; otherwise it is set
// slack later than asked, so that the requests of the next slack fit it.
// A timeout thus fires between its time and slack after it. The idle and
// read timeouts share the read deadline, so they only fit each other when
// they are equal (the defaults are).
type coarseConn struct {
	net.Conn
	slack int64 // nanoseconds
	// rd and wd are the read and write deadlines in force, in unix
	// nanoseconds: 0 none, -1 unknown (forget was called).
	rd, wd atomic.Int64
}

func (c *coarseConn) SetReadDeadline(t time.Time) error  { return c.set(&c.rd, t, false) }
func (c *coarseConn) SetWriteDeadline(t time.Time) error { return c.set(&c.wd, t, true) }

func (c *coarseConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *coarseConn) set(cur *atomic.Int64, t time.Time, write bool) error {
	want := int64(0)
	if !t.IsZero() {
		want = t.UnixNano()
	}
	have := cur.Load()
	if want == 0 && have == 0 || want != 0 && have >= want && have-want <= c.slack {
		return nil
	}
	if want != 0 {
		want += c.slack
		t = t.Add(time.Duration(c.slack))
	}
	var err error
	if write {
		err = c.Conn.SetWriteDeadline(t)
	} else {
		err = c.Conn.SetReadDeadline(t)
	}
	if err != nil {
		want = -1
	}
	cur.Store(want)
	return err
}

// forget is called after the deadlines of the wrapped connection were set
// directly: the next deadline asked for is set whatever it is.
func (c *coarseConn) forget() {
	c.rd.Store(-1)
	c.wd.Store(-1)
}

// SyscallConn exposes the socket for watchClientGone.
func (c *coarseConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no file descriptor")
	}
	return sc.SyscallConn()
}
