package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// connCounter counts an httptest upstream's connections as they open and
// close, and the requests in flight at most.
type connCounter struct {
	opened, closed atomic.Int64
	busy, maxBusy  atomic.Int64
}

func (cc *connCounter) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		cc.opened.Add(1)
	case http.StateClosed, http.StateHijacked:
		cc.closed.Add(1)
	}
}

func (cc *connCounter) enter() {
	n := cc.busy.Add(1)
	for m := cc.maxBusy.Load(); n > m && !cc.maxBusy.CompareAndSwap(m, n); m = cc.maxBusy.Load() {
	}
}

// startCountedUpstream answers every request with a small JSON body after
// delay.
func startCountedUpstream(t *testing.T, delay time.Duration) (*connCounter, string) {
	t.Helper()
	cc := &connCounter{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cc.enter()
		defer cc.busy.Add(-1)
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	up.Config.ConnState = cc.connState
	up.Start()
	t.Cleanup(up.Close)
	return cc, up.Listener.Addr().String()
}

// TestPoolReusesAndAgesOut: requests answered whole share one keep-alive
// connection; once idle for UpstreamIdleTimeout it is closed (freeing the
// llama-server thread it held), and the next request dials anew.
func TestPoolReusesAndAgesOut(t *testing.T) {
	cc, addr := startCountedUpstream(t, 0)
	r := &routes{addrs: map[string]string{"m": addr}}
	ts := newTestServer(t, Config{UpstreamIdleTimeout: time.Second}, proxyFleet(r), ServerInfo{})
	for range 5 {
		resp, body := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"m"}`), "Content-Type", "application/json")
		expect(t, resp, body, 200, `{"ok":true}`)
	}
	if n := cc.opened.Load(); n != 1 {
		t.Fatalf("5 requests in a row opened %d upstream connections, want 1", n)
	}
	waitFor(t, "idle connection closed", func() bool { return cc.closed.Load() == 1 })
	resp, body := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"m"}`), "Content-Type", "application/json")
	expect(t, resp, body, 200, `{"ok":true}`)
	if n := cc.opened.Load(); n != 2 {
		t.Fatalf("after the idle close: %d connections opened, want 2", n)
	}
}

// TestPoolBoundsConnections: at most MaxConnsPerUpstream requests are in
// flight to one upstream; the others wait for a connection and are served.
func TestPoolBoundsConnections(t *testing.T) {
	cc, addr := startCountedUpstream(t, 40*time.Millisecond)
	r := &routes{addrs: map[string]string{"m": addr}}
	ts := newTestServer(t, Config{MaxConnsPerUpstream: 2}, proxyFleet(r), ServerInfo{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, body := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"m"}`), "Content-Type", "application/json")
			expect(t, resp, body, 200, `{"ok":true}`)
		})
	}
	wg.Wait()
	if m := cc.maxBusy.Load(); m != 2 {
		t.Fatalf("%d requests in flight upstream at most, want 2 (MaxConnsPerUpstream)", m)
	}
	if n := cc.opened.Load(); n > 2 {
		t.Fatalf("%d upstream connections opened, want at most 2", n)
	}
}

// TestPoolWait: at max, get waits for a connection put back or a slot
// freed, and gives up after waitFor.
func TestPoolWait(t *testing.T) {
	p := &connPool{addr: listenAndHold(t), max: 1, idleFor: time.Minute, waitFor: 50 * time.Millisecond}
	t.Cleanup(p.closeIdle)
	c1, reused, err := p.get(false, time.Time{})
	if err != nil || reused {
		t.Fatalf("first get: reused %v, %v", reused, err)
	}
	if _, _, err := p.get(false, time.Time{}); !errors.Is(err, errNoFreeConn) {
		t.Fatalf("get at max: %v, want errNoFreeConn", err)
	}

	// A connection put back goes to the waiter.
	p.waitFor = 5 * time.Second
	got := make(chan *upConn)
	go func() {
		c, reused, err := p.get(false, time.Time{})
		if err != nil || !reused {
			t.Errorf("waiter: reused %v, %v", reused, err)
		}
		got <- c
	}()
	waitForWaiter(t, p)
	p.put(c1)
	if c := <-got; c != c1 {
		t.Fatal("the waiter did not get the connection put back")
	}

	// A slot freed lets the waiter dial.
	go func() {
		c, reused, err := p.get(false, time.Time{})
		if err != nil || reused {
			t.Errorf("waiter: reused %v, %v", reused, err)
		}
		got <- c
	}()
	waitForWaiter(t, p)
	p.discard(c1)
	c2 := <-got
	if c2 == nil || c2 == c1 {
		t.Fatal("the waiter did not dial a connection of its own")
	}
	p.discard(c2)
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	if open != 0 {
		t.Fatalf("%d connections counted open after all were discarded", open)
	}
}

func waitForWaiter(t *testing.T, p *connPool) {
	t.Helper()
	waitFor(t, "a waiter", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.waiters) == 1
	})
}

// TestKeepAliveClosedWithoutNotice: an upstream that closes each
// connection after one answer without saying so (as llama-server may)
// costs no request: the request that finds its pooled connection closed
// before any answer byte is sent again on a new one.
func TestKeepAliveClosedWithoutNotice(t *testing.T) {
	// rawUpstream answers one request a connection, then closes it.
	addr, served := rawUpstream(t, func(*http.Request) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	})
	r := &routes{addrs: map[string]string{"m": addr}}
	ts := newTestServer(t, Config{UpstreamIdleTimeout: time.Minute}, proxyFleet(r), ServerInfo{})
	for i := range 6 {
		resp, body := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"m"}`), "Content-Type", "application/json")
		expect(t, resp, body, 200, "{}")
		if n := served.Load(); n != int64(i+1) {
			t.Fatalf("after %d requests the upstream served %d", i+1, n)
		}
		time.Sleep(5 * time.Millisecond) // let the close arrive first
	}
}

func TestUpstreamStatus(t *testing.T) {
	for err, want := range map[error]int{
		errNoFreeConn:                    503,
		fasthttp.ErrTimeout:              504,
		fmt.Errorf("dial: %w", io.EOF):   502,
		errors.New("connection refused"): 502,
	} {
		if got := upstreamStatus(err); got != want {
			t.Errorf("upstreamStatus(%v) = %d, want %d", err, got, want)
		}
	}
}

// listenAndHold accepts connections and keeps them open, reading nothing.
func listenAndHold(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// TestPoolFreshEvictsIdle: a fresh connection asked for at max, when a
// slot is held by an idle connection, is dialed in that slot at once.
func TestPoolFreshEvictsIdle(t *testing.T) {
	p := &connPool{addr: listenAndHold(t), max: 1, idleFor: time.Minute, waitFor: 5 * time.Second}
	t.Cleanup(p.closeIdle)
	c, _, err := p.get(false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	p.put(c)
	c2, reused, err := p.get(true, time.Time{})
	if err != nil || reused || c2 == c {
		t.Fatalf("fresh get: reused %v, %v", reused, err)
	}
	p.discard(c2)
	if p.open != 0 {
		t.Fatalf("%d counted open", p.open)
	}
}

// TestPoolWaitBoundedByDeadline: a request does not wait for a connection
// past its ProxyTimeout deadline.
func TestPoolWaitBoundedByDeadline(t *testing.T) {
	p := &connPool{addr: listenAndHold(t), max: 1, idleFor: time.Minute, waitFor: time.Minute}
	t.Cleanup(p.closeIdle)
	c, _, err := p.get(false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.discard(c)
	done := make(chan error, 1)
	go func() {
		_, _, err := p.get(false, time.Now().Add(50*time.Millisecond))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errNoFreeConn) {
			t.Fatalf("got %v, want errNoFreeConn", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait outlasted the deadline")
	}
}

// TestPoolCounting: gets, puts, discards and closeIdle from many
// goroutines leave no slot counted once every connection is back.
func TestPoolCounting(t *testing.T) {
	p := &connPool{addr: listenAndHold(t), max: 3, idleFor: 5 * time.Millisecond, waitFor: 20 * time.Millisecond}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				c, _, err := p.get((g+i)%3 == 0, time.Time{})
				if err != nil {
					continue
				}
				time.Sleep(time.Duration(i%7) * 50 * time.Microsecond)
				if (g*7+i)%3 == 0 {
					p.discard(c)
				} else {
					p.put(c)
				}
				if (g+i)%50 == 0 {
					p.closeIdle()
				}
			}
		})
	}
	wg.Wait()
	p.closeIdle()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open != 0 || len(p.waiters) != 0 || len(p.all) != 0 {
		t.Fatalf("open %d, waiters %d, tracked %d after every connection came back", p.open, len(p.waiters), len(p.all))
	}
}

// TestSendAllocatesNothing: the writev buffers are kept per connection.
func TestSendAllocatesNothing(t *testing.T) {
	conn, err := net.Dial("tcp", listenAndHold(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newUpConn(conn, nil)
	head, body := []byte("POST / HTTP/1.1\r\n\r\n"), []byte("{}")
	if n := testing.AllocsPerRun(50, func() { _ = c.send(head, body, time.Time{}) }); n != 0 {
		t.Fatalf("%v allocations per send", n)
	}
}

// TestDeadCheckAllocatesNothing: looking at an idle connection before
// reuse costs a syscall and no allocation.
func TestDeadCheckAllocatesNothing(t *testing.T) {
	conn, err := net.Dial("tcp", listenAndHold(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newUpConn(conn, nil)
	if c.dead() {
		t.Fatal("a live idle connection was taken for dead")
	}
	if n := testing.AllocsPerRun(50, func() { _ = c.dead() }); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// readOnce accepts one connection and, after delay, reads what comes on
// it for at most readFor or until it is closed: got gets the bytes.
func readOnce(t *testing.T, delay, readFor time.Duration) (addr string, got <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		defer c.Close()
		time.Sleep(delay)
		_ = c.SetReadDeadline(time.Now().Add(readFor))
		b, _ := io.ReadAll(c)
		ch <- b
	}()
	return ln.Addr().String(), ch
}

// TestSendLargeBody: a body larger than the socket takes at once goes out
// whole and in order, and one the upstream does not read fails at the
// deadline.
func TestSendLargeBody(t *testing.T) {
	head := []byte("POST / HTTP/1.1\r\nContent-Length: 8388608\r\n\r\n")
	body := make([]byte, 8<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	addr, got := readOnce(t, 50*time.Millisecond, 10*time.Second) // the socket buffers fill meanwhile
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newUpConn(conn, nil)
	err = c.send(head, body, time.Now().Add(10*time.Second))
	_ = conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, append(head, body...)) {
		t.Fatalf("upstream got %d bytes, not the %d sent in order", len(b), len(head)+len(body))
	}

	stuck, err := net.Dial("tcp", listenAndHold(t))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	c = newUpConn(stuck, nil)
	start := time.Now()
	if err := c.send(head, body, time.Now().Add(200*time.Millisecond)); !isTimeout(err) {
		t.Fatalf("send to an upstream that reads nothing: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("send took %v past its deadline", d)
	}
}

// TestSendPastDeadline: a request whose deadline has passed (its
// instance took that long to restart) is not sent.
func TestSendPastDeadline(t *testing.T) {
	addr, got := readOnce(t, 0, 300*time.Millisecond)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newUpConn(conn, nil)
	err = c.send([]byte("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n"), []byte("{}"), time.Now().Add(-time.Second))
	n := len(<-got)
	_ = conn.Close()
	if !isTimeout(err) || n != 0 {
		t.Fatalf("send past its deadline: err %v, upstream got %d bytes; want a timeout and nothing sent", err, n)
	}
}

// TestScanWatchesSlowAnswersOnly: the client of a request answered
// within watchAfter is not watched (its hang-up is not seen, and costs
// nothing); that of a slow one is, and its hang-up closes the upstream
// connection long before the answer. The scan stops when nothing awaits.
func TestScanWatchesSlowAnswersOnly(t *testing.T) {
	addr, _ := rawUpstream(t, func(r *http.Request) string {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	p := &connPool{addr: addr, max: 4, idleFor: time.Minute, waitFor: time.Second}
	t.Cleanup(p.closeIdle)
	for _, path := range []string{"/quick", "/slow"} {
		client := hungUpClient(t)
		c, _, err := p.get(false, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.send([]byte("GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		gone, err := c.await(client)
		took := time.Since(start)
		p.discard(c)
		switch path {
		case "/quick":
			if gone || err != nil {
				t.Fatalf("quick answer: gone %v, err %v; want it read, its client not watched", gone, err)
			}
		case "/slow":
			if !gone || took > 500*time.Millisecond {
				t.Fatalf("slow answer: gone %v after %v (err %v); want the hang-up seen within half a second", gone, took, err)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for p.scanning.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the scan still runs with nothing awaiting an answer")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hungUpClient returns the server side of a loopback connection whose
// client has already closed it.
func hungUpClient(t *testing.T) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = cc.Close()
	t.Cleanup(func() { sc.Close() })
	return sc
}

// TestGoneJustAsAnswered: a client that hangs up just as its answer
// arrives (the watch closed the upstream connection, yet the answer was
// read) leaves no closed connection in the pool: the next request is
// served.
func TestGoneJustAsAnswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	slow := make(chan net.Conn)
	answered := make(chan struct{})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_ = req.Body.Close()
					if req.Header.Get("X-Slow") != "" {
						slow <- c // the test answers
						<-answered
						continue
					}
					fmt.Fprint(c, answer)
				}
			})
		}
	})
	r := &routes{addrs: map[string]string{"m": ln.Addr().String()}}
	ts := newTestServer(t, Config{UpstreamIdleTimeout: time.Minute, MaxConnsPerUpstream: 1}, proxyFleet(r), ServerInfo{})
	body := `{"model":"m"}`
	for i := range 20 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		up := <-slow
		time.Sleep(2 * watchAfter) // the client is watched
		fmt.Fprint(up, answer)     // the answer and the hang-up at once
		conn.Close()
		answered <- struct{}{}
		waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
		resp, b := ts.do(t, "POST", "/v1/chat/completions", []byte(body), "Content-Type", "application/json")
		if resp.StatusCode != 200 {
			t.Fatalf("round %d: the next request got %d: %s", i, resp.StatusCode, b)
		}
	}
}

// TestFreshConnNotResent: a request whose new connection the upstream
// closed after reading it (it crashed on it, say) is not sent again: it
// reached a process.
func TestFreshConnNotResent(t *testing.T) {
	addr, got := rawUpstream(t, func(*http.Request) string {
		time.Sleep(50 * time.Millisecond) // generating, then gone
		return ""
	})
	r := &routes{addrs: map[string]string{"m": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	resp, b := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"m"}`), "Content-Type", "application/json")
	expect(t, resp, b, 502)
	if n := got.Load(); n != 1 {
		t.Fatalf("the upstream got the request %d times, want 1", n)
	}
}

// TestWholeAfterCrashWaitsForRestart: a pooled keep-alive connection to a
// process that has since died is found closed before the request is sent
// on it; the request then waits for the restart, as one refused does.
func TestWholeAfterCrashWaitsForRestart(t *testing.T) {
	serve := func(l net.Listener) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{}`)
		})}
		go func() { _ = srv.Serve(l) }()
		return srv
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	first := serve(l)
	r := &routes{addrs: map[string]string{"s": addr}}
	ts := newTestServer(t, Config{AcquireTimeout: 5 * time.Second, UpstreamIdleTimeout: time.Minute}, proxyFleet(r), ServerInfo{})
	body := []byte(`{"model":"s"}`)
	resp, out := ts.do(t, "POST", "/v1/chat/completions", body, "Content-Type", "application/json")
	expect(t, resp, out, 200)
	_ = first.Close() // the process dies, and its side of the pooled connection
	time.Sleep(20 * time.Millisecond)
	restarted := make(chan *http.Server, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		l2, err := net.Listen("tcp", addr)
		if err != nil {
			restarted <- nil
			return
		}
		restarted <- serve(l2)
	}()
	resp, out = ts.do(t, "POST", "/v1/chat/completions", body, "Content-Type", "application/json")
	if second := <-restarted; second != nil {
		defer second.Close()
	} else {
		t.Fatal("could not listen again on the instance's port")
	}
	expect(t, resp, out, 200)
}

// TestPoolLiveAfterAnyAnswer: a connection is reused unchecked while the
// upstream answered on any of its connections less than checkIdleAfter
// before (the process lives), however long it has itself been idle; once
// the upstream has been silent that long, get checks it.
func TestPoolLiveAfterAnyAnswer(t *testing.T) {
	p := &connPool{addr: listenAndHold(t), max: 2, idleFor: time.Minute, waitFor: time.Second}
	t.Cleanup(p.closeIdle)
	a, _, err := p.get(false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := p.get(false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	p.put(a)
	time.Sleep(3 * checkIdleAfter)
	p.put(b)
	soon := b.used.Add(checkIdleAfter / 2)
	for _, want := range []*upConn{b, a} { // most recent first
		c, live, err := p.take(false, time.Time{}, soon)
		if err != nil || c != want || !live {
			t.Fatalf("take = %p, live %v, %v; want %p live", c, live, err, want)
		}
	}
	p.put(a)
	p.put(b)
	c, live, err := p.take(false, time.Time{}, b.used.Add(2*checkIdleAfter))
	if err != nil || c != b || live {
		t.Fatalf("after a silence: take = %p, live %v, %v; want %p to be checked", c, live, err, b)
	}
	p.put(c)
}
