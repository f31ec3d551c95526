package httpapi

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"
)

// connPool keeps the idle keep-alive connections to one upstream that /v1
// requests answered whole (forwardWhole) use, and bounds how many are
// open. It is the proxy's own rather than a fasthttp.HostClient because
// forwardWhole must hold the connection its request is on: a client that
// hangs up while the upstream generates closes that connection, which
// cancels the generation.
//
// Idle connections are reused most recent first, so that a quiet spell
// leaves the oldest to age out: one idle for idleFor (below llama-server's
// 5 s keep-alive timeout) is closed by a timer rather than risked, which
// also frees the llama-server HTTP thread it occupies.
type connPool struct {
	addr    string
	max     int           // connections open at most (idle, in use, dialing)
	idleFor time.Duration // an idle connection is closed after this
	waitFor time.Duration // how long get waits for a free connection at max

	mu      sync.Mutex
	idle    []*upConn // least recently used first
	open    int
	waiters []chan *upConn // FIFO; a nil sent means "a slot is free: dial"
	cleaner *time.Timer    // armed while idle connections are held
}

// upConn is one pooled upstream connection, with its read buffer and the
// timer that starts watching its client (see await).
type upConn struct {
	net.Conn
	br   *bufio.Reader
	pool *connPool
	used time.Time   // when it went idle
	bufs net.Buffers // send's, kept to spare an allocation

	// await's client watch: timer starts it, ran hands over its stop.
	timer  *time.Timer
	ran    chan func() bool
	client net.Conn
}

// errNoFreeConn answers a request that found maxConns connections busy
// for waitFor.
var errNoFreeConn = errors.New("no free connection to the instance: too many requests in flight")

// get returns an idle connection (reused: the upstream may have closed it
// meanwhile) or, if there is none or fresh is asked, a new one; it waits
// at most waitFor when max are open.
func (p *connPool) get(fresh bool) (c *upConn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !fresh {
		c = p.idle[n-1]
		if now.Sub(c.used) < p.idleFor {
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return c, true, nil
		}
		// The most recently used one is too old: so are all the others.
		stale := p.idle
		p.idle = nil
		p.open -= len(stale)
		p.mu.Unlock()
		for _, c := range stale {
			_ = c.Conn.Close()
		}
		p.mu.Lock()
	}
	if p.open >= p.max {
		w := make(chan *upConn, 1)
		p.waiters = append(p.waiters, w)
		p.mu.Unlock()
		if c, ok := p.wait(w); !ok {
			return nil, false, errNoFreeConn
		} else if c != nil {
			if !fresh {
				return c, true, nil
			}
			_ = c.Conn.Close() // dial anew in its slot
		}
		// A slot was handed over: dial in it.
	} else {
		p.open++
		p.mu.Unlock()
	}
	conn, err := dialUpstream(p.addr)
	if err != nil {
		p.freeSlot()
		return nil, false, err
	}
	return &upConn{Conn: conn, br: bufio.NewReaderSize(conn, 16<<10), pool: p}, false, nil
}

// wait waits on w for a connection or a slot (nil); false after waitFor.
func (p *connPool) wait(w chan *upConn) (*upConn, bool) {
	t := time.NewTimer(p.waitFor)
	defer t.Stop()
	select {
	case c := <-w:
		return c, true
	case <-t.C:
	}
	p.mu.Lock()
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, false
		}
	}
	p.mu.Unlock()
	// Handed over as the time ran out: take it after all.
	return <-w, true
}

// put returns c, whose last answer left it reusable, to the pool.
func (p *connPool) put(c *upConn) {
	c.used = time.Now()
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- c
		return
	}
	p.idle = append(p.idle, c)
	if p.cleaner == nil {
		p.cleaner = time.AfterFunc(p.idleFor, p.clean)
	}
	p.mu.Unlock()
}

// discard closes c and frees its slot.
func (p *connPool) discard(c *upConn) {
	_ = c.Conn.Close()
	p.freeSlot()
}

// freeSlot gives a slot whose connection is gone (or was never dialed) to
// the first waiter, if any.
func (p *connPool) freeSlot() {
	p.mu.Lock()
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- nil
		return
	}
	p.open--
	p.mu.Unlock()
}

// clean closes the connections idle for idleFor, and runs again when the
// oldest left will be.
func (p *connPool) clean() {
	now := time.Now()
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].used) >= p.idleFor {
		n++
	}
	old := make([]*upConn, n)
	copy(old, p.idle)
	p.idle = append(p.idle[:0], p.idle[n:]...)
	p.open -= n
	if len(p.idle) > 0 {
		p.cleaner.Reset(p.idle[0].used.Add(p.idleFor).Sub(now))
	} else {
		p.cleaner = nil
	}
	p.mu.Unlock()
	for _, c := range old {
		_ = c.Conn.Close()
	}
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	if p.cleaner != nil {
		p.cleaner.Stop()
		p.cleaner = nil
	}
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.Conn.Close()
	}
}

// send writes the request head and body in one writev. deadline (zero:
// none) bounds the whole exchange.
func (c *upConn) send(head, body []byte, deadline time.Time) error {
	if !deadline.IsZero() {
		_ = c.SetDeadline(deadline)
	}
	c.bufs = append(c.bufs[:0], head, body)
	_, err := c.bufs.WriteTo(c.Conn) // consumes c.bufs
	return err
}

// await waits for the first byte of the answer, consuming nothing. If it
// takes watchAfter or more (a long generation), the client connection is
// watched meanwhile: a client that hangs up closes c, which cancels the
// generation, and gone is then true. A quick answer costs a timer reset.
func (c *upConn) await(client net.Conn) (gone bool, err error) {
	c.client = client
	if c.timer == nil {
		c.ran = make(chan func() bool, 1)
		c.timer = time.AfterFunc(watchAfter, c.watch)
	} else {
		c.timer.Reset(watchAfter)
	}
	_, err = c.br.Peek(1)
	if c.timer.Stop() {
		return false, err
	}
	// The watch has started: wait for it to be set up (so that none is
	// left over for the next request), then end it.
	stop := <-c.ran
	return stop(), err
}

// watch starts watching the client of the request awaited on c.
func (c *upConn) watch() { c.ran <- watchClientGone(c.client, c.Conn) }
