package httpapi

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawStreamUpstream is a hand-written llama-server stand-in: every
// connection gets one chunked event stream and is closed, as llama-server
// closes after a streamed response; dropIdle closes the connections that
// have not sent a request, as llama-server does to a connection idle too
// long.
type rawStreamUpstream struct {
	ln       net.Listener
	accepted atomic.Int64
	served   atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	idle     map[net.Conn]bool
}

func startRawStreamUpstream(t *testing.T) *rawStreamUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawStreamUpstream{ln: ln, idle: map[net.Conn]bool{}}
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		u.wg.Wait()
	})
	return u
}

func (u *rawStreamUpstream) accept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.idle[c] = true
		u.mu.Unlock()
		u.accepted.Add(1)
		u.wg.Add(1)
		go u.serve(c)
	}
}

// dropIdle closes every connection that has not sent a request yet and
// returns how many it closed.
func (u *rawStreamUpstream) dropIdle() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for c, idle := range u.idle {
		if idle {
			_ = c.Close()
			n++
		}
	}
	return n
}

// serve answers one request with a two-event stream.
func (u *rawStreamUpstream) serve(c net.Conn) {
	defer u.wg.Done()
	defer func() {
		u.mu.Lock()
		delete(u.idle, c)
		u.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(c)
	if _, err := br.Peek(1); err != nil {
		return // a spare connection closed unused
	}
	u.mu.Lock()
	u.idle[c] = false
	u.mu.Unlock()
	size := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return // a spare connection closed unused
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			size, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if _, err := io.CopyN(io.Discard, br, int64(size)); err != nil {
		return
	}
	u.served.Add(1)
	_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n")
}

// TestStreamRetriesDeadSpare: a stream that takes a pre-dialed connection
// the upstream has meanwhile closed is retried on a fresh connection,
// because the request never reached the model.
func TestStreamRetriesDeadSpare(t *testing.T) {
	up := startRawStreamUpstream(t)
	r := &routes{addrs: map[string]string{"s": up.ln.Addr().String()}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	body := []byte(`{"model":"s","stream":true}`)
	ct := []string{"Content-Type", "application/json"}

	resp, out := ts.do(t, "POST", "/v1/chat/completions", body, ct...)
	expect(t, resp, out, 200)
	if string(out) != "data: one\n\ndata: two\n\n" {
		t.Fatalf("first stream body %q", out)
	}
	waitFor(t, "the spare to be dialed", func() bool { return up.accepted.Load() == 2 })
	if n := up.dropIdle(); n != 1 {
		t.Fatalf("%d idle connections, want the one spare", n)
	}

	resp, out = ts.do(t, "POST", "/v1/chat/completions", body, ct...)
	expect(t, resp, out, 200)
	if string(out) != "data: one\n\ndata: two\n\n" {
		t.Fatalf("second stream body %q", out)
	}
	if n := up.served.Load(); n != 2 {
		t.Fatalf("upstream served %d streams, want 2", n)
	}
	// Without the retry the second stream would have failed on the dead
	// spare (TestStreamUsesSpare shows spares are used); the retry and the
	// new spare are the third and fourth connections.
	waitFor(t, "the replacement spare", func() bool { return up.accepted.Load() == 4 })
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// TestStreamUsesSpare: streams after the first go on pre-dialed
// connections, one connection per stream plus one spare.
func TestStreamUsesSpare(t *testing.T) {
	up := startRawStreamUpstream(t)
	r := &routes{addrs: map[string]string{"s": up.ln.Addr().String()}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	body := []byte(`{"model":"s","stream":true}`)
	const streams = 5
	for i := range streams {
		resp, out := ts.do(t, "POST", "/v1/chat/completions", body, "Content-Type", "application/json")
		expect(t, resp, out, 200)
		// Wait for the replacement so that the next stream finds it.
		waitFor(t, "spare "+strconv.Itoa(i), func() bool { return up.accepted.Load() == int64(i)+2 })
	}
	if n := up.served.Load(); n != streams {
		t.Fatalf("upstream served %d streams, want %d", n, streams)
	}
	if n := up.accepted.Load(); n != streams+1 {
		t.Fatalf("%d connections for %d streams, want %d (one spare)", n, streams, streams+1)
	}
}

// TestIdleSpareClosed: a spare nobody takes is closed once streams stop,
// so a gone upstream (an instance restarted on another port) holds no
// connection.
func TestIdleSpareClosed(t *testing.T) {
	up := startRawStreamUpstream(t)
	r := &routes{addrs: map[string]string{"s": up.ln.Addr().String()}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	ts.s.ups.spareIdle = 50 * time.Millisecond
	resp, out := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"s","stream":true}`),
		"Content-Type", "application/json")
	expect(t, resp, out, 200)
	waitFor(t, "the spare to be dialed", func() bool { return up.accepted.Load() == 2 })
	waitFor(t, "the idle spare to be closed", func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		return len(up.idle) == 0
	})
}
