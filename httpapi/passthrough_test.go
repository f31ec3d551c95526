package httpapi

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpstream answers each request on a connection of its own with
// answer(req), written as is, then closes the connection; an empty answer
// closes it without a word.
func rawUpstream(t *testing.T, answer func(*http.Request) string) (addr string, got *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	got = new(atomic.Int64)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return // a spare nobody used
				}
				_ = req.Body.Close()
				got.Add(1)
				fmt.Fprint(c, answer(req))
			})
		}
	})
	return ln.Addr().String(), got
}

// TestSentRequestNotResent: a request sent on a pre-dialed connection
// whose process then dies without answering is not sent again (it may be
// what killed the process): 502, and the upstream saw it once. Both the
// passthrough and a streamed /v1 request go this way.
func TestSentRequestNotResent(t *testing.T) {
	addr, got := rawUpstream(t, func(r *http.Request) string {
		if r.Method == http.MethodGet {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
		}
		return "" // dies on it
	})
	r := &routes{addrs: map[string]string{"s": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	for _, c := range []struct{ path, body string }{
		{"/api/v1/instances/s/proxy/completion", `{"prompt":"x"}`},
		{"/v1/chat/completions", `{"model":"s","stream":true}`},
	} {
		resp, body := ts.do(t, "GET", "/api/v1/instances/s/proxy/health", nil)
		expect(t, resp, body, 200, "ok")
		waitFor(t, "a spare", func() bool {
			sp := ts.s.ups.spareFor(addr)
			sp.mu.Lock()
			defer sp.mu.Unlock()
			return sp.conn != nil
		})
		before := got.Load()
		resp, body = ts.do(t, "POST", c.path, []byte(c.body), "Content-Type", "application/json")
		expect(t, resp, body, 502)
		if n := got.Load() - before; n != 1 {
			t.Fatalf("%s: the upstream got the request %d times, want 1", c.path, n)
		}
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// TestInterimAnswersSkipped: interim answers (100 Continue, 103 Early
// Hints) are not relayed as the answer; the final one is.
func TestInterimAnswersSkipped(t *testing.T) {
	addr, _ := rawUpstream(t, func(*http.Request) string {
		return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 13\r\n\r\ndata: after\n\n"
	})
	r := &routes{addrs: map[string]string{"s": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	resp, body := ts.do(t, "GET", "/api/v1/instances/s/proxy/x", nil)
	expect(t, resp, body, 200)
	if string(body) != "data: after\n\n" {
		t.Fatalf("body %q, want the final answer's", body)
	}
	resp, body = ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"s","stream":true}`), "Content-Type", "application/json")
	expect(t, resp, body, 200)
	if string(body) != "data: after\n\n" {
		t.Fatalf("stream body %q, want the final answer's", body)
	}
}

// TestHeadKeepsLength: a HEAD answer through the passthrough keeps the
// Content-Length the upstream gave, with no body.
func TestHeadKeepsLength(t *testing.T) {
	addr, _ := rawUpstream(t, func(*http.Request) string {
		return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2154\r\n\r\n"
	})
	r := &routes{addrs: map[string]string{"s": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	resp, body := ts.do(t, "HEAD", "/api/v1/instances/s/proxy/props", nil)
	expect(t, resp, body, 200)
	if resp.ContentLength != 2154 || len(body) != 0 {
		t.Fatalf("Content-Length %d, body %q; want 2154 and none", resp.ContentLength, body)
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}
