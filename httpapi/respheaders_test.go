package httpapi

import (
	"bufio"
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
)

// noisyUpstream answers like a server that sends everything a proxy must
// not pass on: its own Server, Date, request id, CORS and hop-by-hop
// headers, and a Connection: close on every answer.
func noisyUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Server", "llama.cpp")
		h.Set("X-Request-Id", "upstream-id")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Headers", "*")
		h.Set("Keep-Alive", "timeout=5, max=100")
		h.Set("Connection", "close")
		h.Set("X-Upstream", "1")
		h.Set("Content-Type", "application/json; charset=utf-8")
		if strings.Contains(r.URL.RawQuery, "stream") {
			h.Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestProxyResponseHeaders checks what a client sees of an upstream's
// headers on every proxy path: ours replace the upstream's Server, Date,
// request id and CORS headers, hop-by-hop ones are dropped, the rest is
// kept, and an upstream closing its connection never closes the client's.
func TestProxyResponseHeaders(t *testing.T) {
	up := noisyUpstream(t)
	r := &routes{addrs: map[string]string{"noisy": up}}
	for _, withCORS := range []bool{false, true} {
		cfg := Config{}
		if withCORS {
			cfg.CORSAllowOrigins = []string{"https://ui.example"}
		}
		ts := newTestServer(t, cfg, proxyFleet(r), ServerInfo{})
		addr := strings.TrimPrefix(ts.base, "http://")
		for _, c := range []struct{ name, path, body string }{
			{"json", "/v1/chat/completions", `{"model":"noisy"}`},
			{"json under api base", "/api/v1/v1/chat/completions?q=1", `{"model":"noisy"}`},
			{"stream", "/v1/chat/completions?stream", `{"model":"noisy","stream":true}`},
			{"passthrough", "/api/v1/instances/noisy/proxy/v1/chat/completions", `{}`},
		} {
			t.Run(fmt.Sprintf("%s/cors=%v", c.name, withCORS), func(t *testing.T) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				br := bufio.NewReader(conn)
				// Two requests on one connection: the upstream's close
				// must not end the client's connection.
				for i := range 2 {
					id := fmt.Sprintf("client-%d", i)
					fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nOrigin: https://ui.example\r\nX-Request-Id: %s\r\n"+
						"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", c.path, id, len(c.body), c.body)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					h := resp.Header
					if resp.StatusCode != 200 {
						t.Fatalf("status %d", resp.StatusCode)
					}
					if got := h.Values("Server"); len(got) != 1 || got[0] != "llamactl" {
						t.Errorf("Server %q", got)
					}
					if got := h.Values("Date"); len(got) != 1 {
						t.Errorf("Date %q", got)
					}
					if got := h.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
						t.Errorf("X-Request-Id %q, want %q", got, id)
					}
					if h.Get("Keep-Alive") != "" || resp.Close || h.Get("X-Upstream") != "1" {
						t.Errorf("headers %v (close %v)", h, resp.Close)
					}
					if got := h.Get("Access-Control-Allow-Headers"); got != "" {
						t.Errorf("upstream CORS header relayed: %q", got)
					}
					want := ""
					if withCORS {
						want = "https://ui.example"
					}
					if got := h.Values("Access-Control-Allow-Origin"); len(got) > 1 || h.Get("Access-Control-Allow-Origin") != want {
						t.Errorf("Access-Control-Allow-Origin %q, want %q", got, want)
					}
				}
				// A client asking to close gets its close.
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"+
					"Content-Length: %d\r\n\r\n%s", c.path, len(c.body), c.body)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !resp.Close {
					t.Errorf("client asked to close; response %v", resp.Header)
				}
				if n, err := br.ReadByte(); err != io.EOF {
					t.Errorf("connection still open after Connection: close (read %v, %v)", n, err)
				}
			})
		}
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// TestUpstreamGone: an instance whose address refuses connections gets a
// 502 in the route's error shape, with the request id, on every path,
// and the client's connection stays usable.
func TestUpstreamGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	r := &routes{addrs: map[string]string{"gone": dead}}
	// A refusal is waited out for a restart within AcquireTimeout (see
	// TestRefusedWaitsForTheRestart): keep that short here.
	ts := newTestServer(t, Config{AcquireTimeout: 300 * time.Millisecond}, proxyFleet(r), ServerInfo{})
	ct := []string{"Content-Type", "application/json", "X-Request-Id", "req-502"}
	for _, c := range []struct{ path, body, want string }{
		{"/v1/chat/completions", `{"model":"gone"}`, `"code":"upstream_error"`},
		{"/v1/chat/completions", `{"model":"gone","stream":true}`, `"code":"upstream_error"`},
		{"/api/v1/instances/gone/proxy/health", ``, `did not answer`},
	} {
		method := "POST"
		if c.body == "" {
			method = "GET"
		}
		for range 2 {
			resp, body := ts.do(t, method, c.path, []byte(c.body), ct...)
			expect(t, resp, body, 502, c.want, "instance gone did not answer")
			if got := resp.Header.Get("X-Request-Id"); got != "req-502" {
				t.Fatalf("%s: X-Request-Id %q", c.path, got)
			}
		}
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// TestExpectContinue: a client that sends "Expect: 100-continue" (curl
// does for large bodies) gets its 100 Continue from llamactl, then the
// answer, on the JSON and the streamed path alike.
func TestExpectContinue(t *testing.T) {
	up := startFakellama(t, "tiny", "FAKELLAMA_TOKENS=3")
	r := &routes{addrs: map[string]string{"tiny": up}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	for _, body := range []string{`{"model":"tiny","max_tokens":3}`, `{"model":"tiny","stream":true}`} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 Continue") {
			t.Fatalf("%s: first line %q, %v", body, line, err)
		}
		if _, err := br.ReadString('\n'); err != nil { // the empty line
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), "chat.completion") {
			t.Fatalf("%s: status %d, %v, body %s", body, resp.StatusCode, err, b)
		}
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })

}

// upstreamSeen is what a capturing upstream received.
type upstreamSeen struct {
	URI, Host, Auth, APIKey, Proto string
}

// captureUpstream answers JSON (or an SSE stream for "stream" in the
// query) and records each request.
func captureUpstream(t *testing.T) (string, func() upstreamSeen) {
	t.Helper()
	var mu sync.Mutex
	var seen upstreamSeen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen = upstreamSeen{r.RequestURI, r.Host, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.Proto}
		mu.Unlock()
		if strings.Contains(r.URL.RawQuery, "stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"chat.completion"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() upstreamSeen { mu.Lock(); defer mu.Unlock(); return seen }
}

// TestUpstreamRequestLine checks what the upstream receives for request
// lines a client may send: the routed, normalized path with the query,
// the instance's own address as Host, HTTP/1.1, and no credential, be it
// user info in an absolute URI or an API key sent as a trailer.
func TestUpstreamRequestLine(t *testing.T) {
	up, last := captureUpstream(t)
	r := &routes{addrs: map[string]string{"cap": up}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	addr := strings.TrimPrefix(ts.base, "http://")
	for _, stream := range []bool{false, true} {
		body, query := `{"model":"cap"}`, "q=1"
		if stream {
			body, query = `{"model":"cap","stream":true}`, "stream=1"
		}
		// The path goes upstream as the client spelt it, escapes and all,
		// unless normalization changed what routing saw (empty or dot
		// segments): then as routed.
		for _, c := range []struct{ name, line, proto, want string }{
			{"plain", "/v1/chat/completions?" + query, "HTTP/1.1", ""},
			{"double slash", "/v1//chat/completions?" + query, "HTTP/1.1", ""},
			{"dot segment", "/v1/x/../chat/completions?" + query, "HTTP/1.1", ""},
			{"escaped", "/v1/chat%2fcompletion%73?" + query, "HTTP/1.1", "/v1/chat%2fcompletion%73?" + query},
			{"escaped query and fragment", "/v1/a%3Fb%23c?" + query, "HTTP/1.1", "/v1/a%3Fb%23c?" + query},
			{"escaped space", "/v1/a%20b?" + query, "HTTP/1.1", "/v1/a%20b?" + query},
			{"escaped dot segment", "/v1/x/%2e%2e/chat/completions?" + query, "HTTP/1.1", ""},
			{"under the api base", "/api/v1/v1/a%3Fb?" + query, "HTTP/1.1", "/v1/a%3Fb?" + query},
			{"absolute with user info", "http://alice:s3cret@client.example/v1/chat/completions?" + query, "HTTP/1.1", ""},
			{"absolute https", "https://client.example/v1/chat/completions?" + query, "HTTP/1.1", ""},
			{"http/1.0", "/v1/chat/completions?" + query, "HTTP/1.0", ""},
		} {
			t.Run(fmt.Sprintf("%s/stream=%v", c.name, stream), func(t *testing.T) {
				raw := fmt.Sprintf("POST %s %s\r\nHost: client.example\r\nContent-Type: application/json\r\n"+
					"Content-Length: %d\r\n\r\n%s", c.line, c.proto, len(body), body)
				status := rawStatus(t, addr, raw)
				if status != 200 {
					t.Fatalf("status %d", status)
				}
				got := last()
				want := upstreamSeen{URI: "/v1/chat/completions?" + query, Host: up, Proto: "HTTP/1.1"}
				if c.want != "" {
					want.URI = c.want
				}
				if got != want {
					t.Fatalf("upstream saw %+v, want %+v", got, want)
				}
			})
		}
		t.Run(fmt.Sprintf("key as trailer/stream=%v", stream), func(t *testing.T) {
			raw := fmt.Sprintf("POST /v1/chat/completions?%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
				"Trailer: X-Api-Key\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-Api-Key: secret-key\r\n\r\n",
				query, len(body), body)
			if status := rawStatus(t, addr, raw); status != 200 {
				t.Fatalf("status %d", status)
			}
			if got := last(); got.APIKey != "" || got.Auth != "" {
				t.Fatalf("credential forwarded: %+v", got)
			}
		})
	}
	t.Run("key as trailer/passthrough", func(t *testing.T) {
		raw := "POST /api/v1/instances/cap/proxy/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
			"Trailer: X-Api-Key\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Api-Key: secret-key\r\n\r\n"
		if status := rawStatus(t, addr, raw); status != 200 {
			t.Fatalf("status %d", status)
		}
		if got := last(); got.APIKey != "" || got.Auth != "" {
			t.Fatalf("credential forwarded: %+v", got)
		}
	})
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// rawStatus sends raw on a new connection and returns the status of the
// answer, whose body it reads whole; an answer 10s late fails.
func rawStatus(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// A connection refused by an instance whose process just died (its
// supervisor has not seen it yet) is no answer: the request never reached
// it, so the proxy waits for the instance to be ready again (acquiring it
// anew, bounded by AcquireTimeout) and sends it then, on every path.
func TestRefusedWaitsForTheRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused until the "restart" below
	r := &routes{addrs: map[string]string{"back": addr, "gone": "127.0.0.1:1"}}
	ts := newTestServer(t, Config{AcquireTimeout: 2 * time.Second}, proxyFleet(r), ServerInfo{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		if strings.Contains(req.URL.RawQuery, "stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})}
	t.Cleanup(func() { _ = srv.Close() })
	go func() {
		time.Sleep(150 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			return
		}
		_ = srv.Serve(l)
	}()
	for _, c := range []struct{ name, path, body string }{
		{"json", "/v1/chat/completions", `{"model":"back"}`},
		{"stream", "/v1/chat/completions?stream", `{"model":"back","stream":true}`},
		{"passthrough", "/api/v1/instances/back/proxy/health", ""},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		resp, out := ts.do(t, "POST", c.path, body, "Content-Type", "application/json")
		expect(t, resp, out, 200)
	}
	// An instance that never comes back: the refusal is answered, in time.
	begin := time.Now()
	resp, out := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"gone"}`), "Content-Type", "application/json")
	expect(t, resp, out, 502, "refused")
	if el := time.Since(begin); el > 10*time.Second {
		t.Fatalf("a lasting refusal took %s to answer", el)
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// A request whose process died while it had it (the connection dropped
// without an answer, then refused) may be what killed it: it is not sent
// again to the restarted process, and the client gets 502.
func TestNotResentAfterItReachedAProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	go func() { // the process that dies with the request
		c, err := l.Accept()
		l.Close() // gone: dials are refused from now on
		if err != nil {
			return
		}
		_, _ = c.Read(make([]byte, 4096))
		c.Close()
	}()
	var second atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		second.Add(1)
		_, _ = io.WriteString(w, `{}`)
	})}
	t.Cleanup(func() { _ = srv.Close() })
	go func() { // the restarted process, on the same port
		time.Sleep(200 * time.Millisecond)
		if l2, err := net.Listen("tcp", addr); err == nil {
			_ = srv.Serve(l2)
		}
	}()
	r := &routes{addrs: map[string]string{"fragile": addr}}
	ts := newTestServer(t, Config{AcquireTimeout: 3 * time.Second}, proxyFleet(r), ServerInfo{})
	resp, out := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"fragile"}`), "Content-Type", "application/json")
	expect(t, resp, out, 502)
	time.Sleep(500 * time.Millisecond)
	if n := second.Load(); n != 0 {
		t.Fatalf("the restarted process got the request %d times", n)
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// After a stream the proxy keeps a spare connection to the instance; when
// the process dies, that spare is stale and the port refuses: a streamed
// request then waits for the restart too, instead of a 502.
func TestStreamAfterCrashWaitsForRestart(t *testing.T) {
	serve := func(l net.Listener) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Connection", "close") // as llama-server after a stream
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
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
	ts := newTestServer(t, Config{AcquireTimeout: 3 * time.Second}, proxyFleet(r), ServerInfo{})
	body := []byte(`{"model":"s","stream":true}`)
	resp, out := ts.do(t, "POST", "/v1/chat/completions", body, "Content-Type", "application/json")
	expect(t, resp, out, 200, "[DONE]")
	time.Sleep(100 * time.Millisecond) // the spare is dialed
	_ = first.Close()                  // the process dies, the spare with it
	var second *http.Server
	t.Cleanup(func() {
		if second != nil {
			_ = second.Close()
		}
	})
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(200 * time.Millisecond)
		if l2, err := net.Listen("tcp", addr); err == nil {
			second = serve(l2)
		}
	}()
	resp, out = ts.do(t, "POST", "/v1/chat/completions", body, "Content-Type", "application/json")
	<-restarted
	expect(t, resp, out, 200, "[DONE]")
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}
