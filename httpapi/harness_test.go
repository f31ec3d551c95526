package httpapi

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// testServer is a Server listening on 127.0.0.1 and a client whose every
// response is checked against both API documents.
type testServer struct {
	s      *Server
	base   string
	client *http.Client
}

func newTestServer(t *testing.T, cfg Config, fleet Fleet, info ServerInfo) *testServer {
	t.Helper()
	if cfg.UpstreamIdleTimeout == 0 {
		cfg.UpstreamIdleTimeout = 100 * time.Millisecond
	}
	s := New(cfg, fleet, info)
	// Let fasthttp's worker cleaner notice Shutdown quickly, for goleak.
	s.srv.MaxIdleWorkerDuration = 100 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	ts := &testServer{s: s, base: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

// do sends a request and returns the response with its whole body, after
// validating it against the seed contract and openapi.json.
func (ts *testServer) do(t *testing.T, method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	checkContract(t, req, resp, b)
	return resp, b
}

// expect checks status (and that the body contains want, if given).
func expect(t *testing.T, resp *http.Response, body []byte, status int, want ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	for _, w := range want {
		if !bytes.Contains(body, []byte(w)) {
			t.Fatalf("%s %s: body %s lacks %q", resp.Request.Method, resp.Request.URL.Path, body, w)
		}
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("%s %s: no X-Request-Id", resp.Request.Method, resp.Request.URL.Path)
	}
}
