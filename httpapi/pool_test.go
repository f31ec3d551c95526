package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
	ts := newTestServer(t, Config{UpstreamIdleTimeout: 150 * time.Millisecond}, proxyFleet(r), ServerInfo{})
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
	p := &connPool{addr: ln.Addr().String(), max: 1, idleFor: time.Minute, waitFor: 50 * time.Millisecond}
	t.Cleanup(p.closeIdle)
	c1, reused, err := p.get(false)
	if err != nil || reused {
		t.Fatalf("first get: reused %v, %v", reused, err)
	}
	if _, _, err := p.get(false); !errors.Is(err, errNoFreeConn) {
		t.Fatalf("get at max: %v, want errNoFreeConn", err)
	}

	// A connection put back goes to the waiter.
	p.waitFor = 5 * time.Second
	got := make(chan *upConn)
	go func() {
		c, reused, err := p.get(false)
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
		c, reused, err := p.get(false)
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var served atomic.Int64
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_ = req.Body.Close()
				served.Add(1)
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
			})
		}
	})
	r := &routes{addrs: map[string]string{"m": ln.Addr().String()}}
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
		fasthttp.ErrNoFreeConns:          503,
		fasthttp.ErrTimeout:              504,
		fmt.Errorf("dial: %w", io.EOF):   502,
		errors.New("connection refused"): 502,
	} {
		if got := upstreamStatus(err); got != want {
			t.Errorf("upstreamStatus(%v) = %d, want %d", err, got, want)
		}
	}
}
