package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAlternatingStreamsNeverFail runs many alternating streamed and
// non-streamed requests through the proxy to cmd/fakellama, which (like
// llama-server) closes the connection after every streamed response
// although it announced keep-alive. Not one request may fail.
func TestAlternatingStreamsNeverFail(t *testing.T) {
	addr := startFakellama(t, "tiny", "FAKELLAMA_TOKENS=4")
	r := &routes{addrs: map[string]string{"tiny": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})

	// /v1 streams take a fresh connection each; the passthrough proxy
	// pools connections and must drop the ones a stream used.
	const workers, perWorker = 4, 60
	var failures atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				stream := (i+w)%2 == 0
				path := "/v1/chat/completions"
				if i%4 < 2 {
					path = "/api/v1/instances/tiny/proxy/v1/chat/completions"
				}
				if err := completion(ts.client, ts.base+path, "tiny", stream); err != nil {
					failures.Add(1)
					firstErr.Do(func() { t.Errorf("request %d/%d (stream=%v): %v", w, i, stream, err) })
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed", n, workers*perWorker)
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// TestUpstreamKeepAliveMaxNeverFails: llama-server (cpp-httplib) closes a
// keep-alive connection after its hundredth reply, which says
// "Connection: close"; cmd/fakellama does too. Sequential requests, on
// /v1 and the passthrough, each well past a hundred, never see it: the
// connection that carried the hundredth is not reused, and the client's
// own connection to llamactl stays open.
func TestUpstreamKeepAliveMaxNeverFails(t *testing.T) {
	addr := startFakellama(t, "tiny", "FAKELLAMA_TOKENS=2")
	r := &routes{addrs: map[string]string{"tiny": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	for _, path := range []string{"/v1/chat/completions", "/api/v1/instances/tiny/proxy/v1/chat/completions"} {
		for i := range 250 {
			body := `{"model":"tiny","messages":[{"role":"user","content":"hi"}]}`
			resp, err := ts.client.Post(ts.base+path, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatalf("%s request %d: %v", path, i+1, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || resp.Close {
				t.Fatalf("%s request %d: status %d close %v err %v: %s", path, i+1, resp.StatusCode, resp.Close, err, b)
			}
		}
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// completion sends one chat completion and checks the whole answer.
func completion(c *http.Client, url, model string, stream bool) error {
	body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if stream {
		if resp.Header.Get("Content-Type") != "text/event-stream" || !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) {
			return fmt.Errorf("incomplete stream (%s): %q", resp.Header.Get("Content-Type"), b)
		}
		return nil
	}
	var v struct {
		Object string `json:"object"`
		Model  string `json:"model"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Object != "chat.completion" || v.Model != model {
		return fmt.Errorf("bad completion %s: %v", b, err)
	}
	return nil
}

// TestStreamFromFakellama checks a token-by-token stream arrives in
// pieces, with the first event well before the last.
func TestStreamFromFakellama(t *testing.T) {
	addr := startFakellama(t, "tiny", "FAKELLAMA_TOKENS=8", "FAKELLAMA_TOKEN_DELAY=30ms")
	r := &routes{addrs: map[string]string{"tiny": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	start := time.Now()
	resp, err := ts.client.Post(ts.base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"tiny","stream":true,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var first time.Duration
	events := 0
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			if events == 0 {
				first = time.Since(start)
			}
			events++
		}
	}
	total := time.Since(start)
	if events < 9 {
		t.Fatalf("%d events", events)
	}
	// 8 tokens at 30ms: the whole stream takes >= 240ms; buffering would
	// deliver the first event only at the end.
	if first > total/2 {
		t.Fatalf("first event after %v of %v: the stream was buffered", first, total)
	}
}

// TestShutdownLetsStreamsFinish: Shutdown stops accepting but an in-flight
// proxied stream runs to its end.
func TestShutdownLetsStreamsFinish(t *testing.T) {
	addr := startFakellama(t, "tiny", "FAKELLAMA_TOKENS=10", "FAKELLAMA_TOKEN_DELAY=20ms")
	r := &routes{addrs: map[string]string{"tiny": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	resp, err := ts.client.Post(ts.base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"tiny","stream":true,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- ts.s.Shutdown(ctx)
	}()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut by shutdown: %v", err)
	}
	if !bytes.HasSuffix(rest, []byte("data: [DONE]\n\n")) {
		t.Fatalf("stream incomplete: %q", rest)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(ts.base + "/v1/models"); err == nil {
		t.Fatal("server still accepts after shutdown")
	}
}
