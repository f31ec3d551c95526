package httpapi

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"
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

	mu       sync.Mutex
	idle     []*upConn // least recently used first
	answered time.Time // when put last took a connection back
	open     int
	waiters  []chan *upConn // FIFO; a nil sent means "a slot is free: dial"
	cleaner  *time.Timer    // armed while idle connections are held
	all      []*upConn      // every open connection, for scan
	scanner  *time.Timer    // runs scan while requests await their answer

	scanning atomic.Bool // a scan is scheduled (see armScan)
}

// upConn is one pooled upstream connection, with its read buffer and
// what await needs to watch its client.
type upConn struct {
	net.Conn
	br     *bufio.Reader
	pool   *connPool
	peek   *peeker     // for dead
	slot   int         // index in pool.all; -1: not there
	used   time.Time   // when it went idle
	taken  time.Time   // when take handed it out, or when get dialed it
	bufArr [2][]byte   // send's writev buffers, kept to spare an allocation
	bufs   net.Buffers // over bufArr
	kept   keptHeaders // readAnswer's scratch

	// await's client watch (see connPool.scan): while await waits, since
	// is when the request began (taken, in nanoseconds after clockBase),
	// and watching once the scan took it; 0 otherwise. ran hands over the
	// watch's stop.
	since  atomic.Int64
	ran    chan func() bool
	client net.Conn
}

// newUpConn wraps conn, a new connection of p's (nil p: of no pool).
func newUpConn(conn net.Conn, p *connPool) *upConn {
	return &upConn{Conn: conn, br: bufio.NewReaderSize(conn, 16<<10), pool: p, peek: newPeeker(conn), slot: -1,
		ran: make(chan func() bool, 1)}
}

// watching is upConn.since once a scan started watching its client.
const watching = -1

// clockBase is the origin of upConn.since.
var clockBase = time.Now()

// errNoFreeConn answers a request that found maxConns connections busy
// for waitFor.
var errNoFreeConn = errors.New("no free connection to the instance: too many requests in flight")

// checkIdleAfter is how long the upstream must have been silent (no
// answer on any of its connections) for get to look at the connection it
// reuses (a syscall, no wait): one whose process died meanwhile is then
// replaced before the request is sent, so a failure after sending still
// means the request may have reached a process. An answer on any
// connection proves the process alive as well as one on this connection
// would; under load answers come far more often than this.
//
// A connection the upstream closed on its own while its process lives
// (one it held past its keep-alive timeout, say) fails before any answer
// byte and is sent again at once on a new one (see forwardWhole).
const checkIdleAfter = time.Millisecond

// get returns an idle connection (reused: it was alive a moment ago, if the
// upstream was silent for checkIdleAfter) or, if there is none or fresh is
// asked, a new one. At max it waits at most waitFor, and not past the
// deadline if there is one.
func (p *connPool) get(fresh bool, deadline time.Time) (c *upConn, reused bool, err error) {
	now := time.Now()
	for {
		c, live, err := p.take(fresh, deadline, now)
		switch {
		case err != nil:
			return nil, false, err
		case c == nil: // a slot of our own: dial in it
			conn, err := dialUpstream(p.addr)
			if err != nil {
				p.freeSlots(1)
				return nil, false, err
			}
			c = newUpConn(conn, p)
			c.taken = time.Now() // take may have waited for the slot
			p.mu.Lock()
			p.trackLocked(c)
			p.mu.Unlock()
			return c, false, nil
		case !live && c.dead():
			p.discard(c) // closed by the upstream: try the next one
		default:
			return c, true, nil
		}
	}
}

// take returns an idle connection to reuse, or nil for a slot to dial in
// (counted in open), waiting for either at max. now is when get began;
// live tells that the upstream answered less than checkIdleAfter before.
func (p *connPool) take(fresh bool, deadline, now time.Time) (c *upConn, live bool, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !fresh {
		c = p.idle[n-1]
		if now.Sub(c.used) < p.idleFor {
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			live = now.Sub(p.answered) < checkIdleAfter
			p.mu.Unlock()
			c.taken = now
			return c, live, nil
		}
		// The most recently used one is too old: so are all the others.
		// One slot is kept to dial in; the rest are freed.
		stale := p.idle
		p.idle = nil
		p.untrackLocked(stale...)
		hand := p.freeSlotsLocked(len(stale) - 1)
		p.mu.Unlock()
		closeAll(stale)
		handSlots(hand)
		return nil, false, nil
	}
	if p.open < p.max {
		p.open++
		p.mu.Unlock()
		return nil, false, nil
	}
	if len(p.idle) > 0 { // fresh: dial in the slot of the oldest idle one
		old := p.idle[0]
		p.idle = append(p.idle[:0], p.idle[1:]...)
		p.untrackLocked(old)
		p.mu.Unlock()
		_ = old.Conn.Close()
		return nil, false, nil
	}
	w := make(chan *upConn, 1)
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	wait := p.waitFor
	if !deadline.IsZero() {
		wait = min(wait, time.Until(deadline))
	}
	c, ok := p.wait(w, wait)
	switch {
	case !ok:
		return nil, false, errNoFreeConn
	case c == nil:
		return nil, false, nil // a slot was handed over
	case fresh:
		p.mu.Lock()
		p.untrackLocked(c)
		p.mu.Unlock()
		_ = c.Conn.Close() // dial anew in its slot
		return nil, false, nil
	}
	c.taken = time.Now() // after the wait
	return c, true, nil  // put has just taken it back from an answer
}

// wait waits on w for a connection or a slot (nil); false after d.
func (p *connPool) wait(w chan *upConn, d time.Duration) (*upConn, bool) {
	t := time.NewTimer(d)
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

// put returns c, whose last answer left it reusable, to the pool; a
// connection with bytes nobody asked for is closed instead.
func (p *connPool) put(c *upConn) {
	if c.br.Buffered() > 0 {
		p.discard(c)
		return
	}
	c.used = time.Now()
	p.mu.Lock()
	p.answered = c.used
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
	p.mu.Lock()
	p.untrackLocked(c)
	hand := p.freeSlotsLocked(1)
	p.mu.Unlock()
	handSlots(hand)
}

// trackLocked adds c, just dialed, to p.all.
func (p *connPool) trackLocked(c *upConn) {
	c.slot = len(p.all)
	p.all = append(p.all, c)
}

// untrackLocked removes cs, about to be closed, from p.all.
func (p *connPool) untrackLocked(cs ...*upConn) {
	for _, c := range cs {
		i := c.slot
		if i < 0 || i >= len(p.all) || p.all[i] != c {
			continue
		}
		last := len(p.all) - 1
		p.all[i] = p.all[last]
		p.all[i].slot = i
		p.all[last] = nil
		p.all = p.all[:last]
		c.slot = -1
	}
}

// scanEvery is how often scan runs while requests await their answer: a
// client is watched from watchAfter to watchAfter+scanEvery into its
// request (counted from when take handed out its connection).
const scanEvery = 10 * time.Millisecond

// armScan schedules a scan, unless one is (scanning was false; await
// saw it so after marking its connection).
func (p *connPool) armScan() {
	if !p.scanning.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	if p.scanner == nil {
		p.scanner = time.AfterFunc(scanEvery, p.scan)
	} else {
		p.scanner.Reset(scanEvery)
	}
	p.mu.Unlock()
}

// scan starts watching the clients of requests that have taken
// watchAfter or more (see await). One timer for the pool spares every
// request a timer of its own: a quick answer costs two atomic operations
// and a load. The timer runs again while requests await their answer;
// scanning is cleared before the connections are looked at, so that an
// await that marks its connection after the look finds it cleared and
// arms the scan again.
func (p *connPool) scan() {
	p.scanning.Store(false)
	now := int64(time.Since(clockBase))
	var due []*upConn
	awaiting := false
	p.mu.Lock()
	for _, c := range p.all {
		s := c.since.Load()
		if s > 0 {
			awaiting = true
			if now-s >= int64(watchAfter) && c.since.CompareAndSwap(s, watching) {
				due = append(due, c)
			}
		}
	}
	p.mu.Unlock()
	if awaiting {
		p.armScan()
	}
	for _, c := range due {
		c.ran <- watchClientGone(c.client, c.Conn)
	}
}

// freeSlots frees n slots whose connections are gone (or were never
// dialed), each to the first waiter if any.
func (p *connPool) freeSlots(n int) {
	p.mu.Lock()
	hand := p.freeSlotsLocked(n)
	p.mu.Unlock()
	handSlots(hand)
}

// freeSlotsLocked frees n slots: it returns the waiters each is handed
// to (see handSlots), and counts the rest out of open.
func (p *connPool) freeSlotsLocked(n int) []chan *upConn {
	k := min(n, len(p.waiters))
	var hand []chan *upConn
	if k > 0 {
		hand = append(hand, p.waiters[:k]...)
		p.waiters = p.waiters[k:]
	}
	p.open -= n - k
	return hand
}

// handSlots tells each waiter that a slot is theirs to dial in.
func handSlots(ws []chan *upConn) {
	for _, w := range ws {
		w <- nil
	}
}

func closeAll(cs []*upConn) {
	for _, c := range cs {
		_ = c.Conn.Close()
	}
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
	p.untrackLocked(old...)
	hand := p.freeSlotsLocked(n)
	if len(p.idle) > 0 {
		p.cleaner.Reset(p.idle[0].used.Add(p.idleFor).Sub(now))
	} else {
		p.cleaner = nil
	}
	p.mu.Unlock()
	closeAll(old)
	handSlots(hand)
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.untrackLocked(idle...)
	hand := p.freeSlotsLocked(len(idle))
	if p.cleaner != nil {
		p.cleaner.Stop()
		p.cleaner = nil
	}
	p.mu.Unlock()
	closeAll(idle)
	handSlots(hand)
}

// send writes the request head and body in one writev (one write if body
// is empty: the caller put a small one after the head). deadline (zero:
// none) bounds the whole exchange.
func (c *upConn) send(head, body []byte, deadline time.Time) error {
	if !deadline.IsZero() {
		_ = c.SetDeadline(deadline)
	}
	if len(body) == 0 {
		_, err := c.Conn.Write(head)
		return err
	}
	c.bufArr = [2][]byte{head, body}
	c.bufs = c.bufArr[:]
	_, err := c.bufs.WriteTo(c.Conn) // consumes c.bufs, not the array
	c.bufArr = [2][]byte{}
	return err
}

// dead tells whether c, idle until now, is no use (see connDead).
func (c *upConn) dead() bool { return c.peek.dead() }

// await waits for the first byte of the answer, consuming nothing. If
// the request has taken watchAfter or more since c was handed out (a long
// generation), the pool's scan watches the client connection meanwhile:
// a client that hangs up closes c, which cancels the generation, and gone
// is then true.
func (c *upConn) await(client net.Conn) (gone bool, err error) {
	c.client = client
	start := max(int64(c.taken.Sub(clockBase)), 1)
	c.since.Store(start)
	if c.pool != nil && !c.pool.scanning.Load() {
		c.pool.armScan()
	}
	_, err = c.br.Peek(1)
	if c.since.CompareAndSwap(start, 0) {
		c.client = nil
		return false, err
	}
	// The watch has started: wait for it to be set up (so that none is
	// left over for the next request), then end it.
	stop := <-c.ran
	c.since.Store(0)
	c.client = nil
	if gone = stop(); gone && err == nil {
		err = errClientGone // answered, but c is closed
	}
	return gone, err
}

// errClientGone is the error of a request whose client hung up.
var errClientGone = errors.New("client went away")
