package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// 2. The OpenAI proxy routes by model name and alias, JSON and streaming,
// and answers an unknown model with an OpenAI-shaped 400.
func testOpenAIProxy(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "chat.yaml", d.fd.specYAML("chat", map[string]string{"FAKELLAMA_TOKENS": "5"}, "alias: chatty"))
	inst := d.waitHealthy("chat")

	r := d.chat("chat")
	d.expectServedBy(r, inst.PID, "chat completion by name")
	var comp struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	decode(t, r, &comp)
	if len(comp.Choices) != 1 || comp.Choices[0].Message.Content == "" {
		t.Errorf("completion has no content: %s", r)
	}
	if r.Header.Get("X-Fake-Instance") != "chatty" {
		t.Errorf("X-Fake-Instance %q, want the alias chatty passed as --alias", r.Header.Get("X-Fake-Instance"))
	}

	d.expectServedBy(d.chat("chatty"), inst.PID, "chat completion by alias")

	// Streaming: a role chunk, 5 token chunks, the final chunk, [DONE].
	events, hdr := d.streamChat(t, "chat")
	if got := hdr.Get("X-Fake-Pid"); got != fmt.Sprint(inst.PID) {
		t.Errorf("stream answered by X-Fake-Pid %q, want %d", got, inst.PID)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("stream Content-Type %q", ct)
	}
	if len(events) != 5+3 || events[len(events)-1] != "[DONE]" {
		t.Errorf("stream: got %d data events ending %q, want 8 ending [DONE]: %q", len(events), last(events), events)
	}

	r = d.chat("no-such-model")
	if r.Status != http.StatusBadRequest {
		t.Errorf("unknown model: %s, want 400", r)
	}
	var oaErr struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &oaErr); err != nil || oaErr.Error.Message == "" || oaErr.Error.Type == "" {
		t.Errorf("unknown model: body %s is not an OpenAI error (err %v)", r.Body, err)
	}

	r = d.call("GET", "/v1/models", nil)
	d.expect(r, http.StatusOK, "list models")
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	decode(t, r, &models)
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Contains(ids, "chat") {
		t.Errorf("/v1/models does not list chat: %s", r)
	}

	r = d.call("GET", "/api/v1/instances/chat/proxy/health", nil)
	d.expectServedBy(r, inst.PID, "instance passthrough proxy /health")
	r = d.call("POST", "/api/v1/instances/chat/proxy/completion", map[string]any{"prompt": "hi", "n_predict": 2})
	d.expectServedBy(r, inst.PID, "instance passthrough proxy POST /completion")

	r = d.call("POST", "/v1/completions", map[string]any{"model": "chatty", "prompt": "hi"})
	d.expectServedBy(r, inst.PID, "/v1/completions by alias")
}

// Embedding models are reached through /v1/embeddings; the spec's
// embedding option reaches llama-server as a flag.
func testEmbeddings(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "embedder.yaml", d.fd.specYAML("embedder", nil, "embedding: true", "pooling: mean"))
	inst := d.waitHealthy("embedder")
	r := d.call("POST", "/v1/embeddings", map[string]any{"model": "embedder", "input": "hello"})
	d.expectServedBy(r, inst.PID, "embeddings")
	var emb struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	decode(t, r, &emb)
	if len(emb.Data) != 1 || len(emb.Data[0].Embedding) == 0 {
		t.Errorf("embeddings response has no vector: %s", r)
	}
}

// Many clients at once, streaming and not, to two instances: every
// request is answered in full by the right process. The daemon is built
// with -race under go test -race, so a data race in the proxy fails too.
func testConcurrentProxy(d *daemon) {
	t := d.t
	env := map[string]string{"FAKELLAMA_TOKENS": "4", "FAKELLAMA_TOKEN_DELAY": "2ms"}
	d.fd.writeSpec(t, "busy1.yaml", d.fd.specYAML("busy1", env, "parallel: 4"))
	d.fd.writeSpec(t, "busy2.yaml", d.fd.specYAML("busy2", env, "parallel: 4"))
	pids := map[string]int{"busy1": d.waitHealthy("busy1").PID, "busy2": d.waitHealthy("busy2").PID}

	const clients, each = 12, 4
	errs := make(chan error, clients*each)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				model := []string{"busy1", "busy2"}[(c+i)%2]
				if (c+i)%3 == 0 {
					events, hdr, err := d.stream(model, nil)
					switch {
					case err != nil:
						errs <- fmt.Errorf("stream %s: %w", model, err)
					case len(events) != 4+3 || last(events) != "[DONE]":
						errs <- fmt.Errorf("stream %s: %d events ending %q", model, len(events), last(events))
					case hdr.Get("X-Fake-Pid") != strconv.Itoa(pids[model]):
						errs <- fmt.Errorf("stream %s answered by pid %s", model, hdr.Get("X-Fake-Pid"))
					}
					continue
				}
				r, err := d.try("POST", "/v1/chat/completions", map[string]any{
					"model": model, "messages": []map[string]string{{"role": "user", "content": "hi"}},
				})
				switch {
				case err != nil:
					errs <- fmt.Errorf("chat %s: %w", model, err)
				case r.Status != http.StatusOK:
					errs <- fmt.Errorf("chat %s: %s", model, r)
				case r.Header.Get("X-Fake-Pid") != strconv.Itoa(pids[model]):
					errs <- fmt.Errorf("chat %s answered by pid %s", model, r.Header.Get("X-Fake-Pid"))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// streamChat posts a streaming chat completion and returns the payloads
// of its "data:" events and the response header.
func (d *daemon) streamChat(t testing.TB, model string) ([]string, http.Header) {
	t.Helper()
	events, hdr, err := d.stream(model, nil)
	if err != nil {
		t.Fatalf("stream %s: %v", model, err)
	}
	return events, hdr
}

// stream posts a streaming chat completion for model and returns the
// payloads of its "data:" events. first, if not nil, is closed when the
// first event has arrived. It reports failures as errors, so it may run
// in its own goroutine.
func (d *daemon) stream(model string, first chan<- struct{}) ([]string, http.Header, error) {
	body, _ := json.Marshal(map[string]any{
		"model": model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": "hello"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", d.URL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.Header, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			events = append(events, strings.TrimSpace(v))
			if first != nil && len(events) == 1 {
				close(first)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return events, resp.Header, fmt.Errorf("read stream after %d events: %w", len(events), err)
	}
	return events, resp.Header, nil
}

// A client that hangs up while its answer is generated, streamed or not,
// cancels the generation: the instance's requests_processing drops to 0
// long before the 10 s generation would have ended. The daemon logs the
// request: status 499 if no answer had started, else the stream's status
// with the write error.
func testHangUpCancels(d *daemon) {
	t := d.t
	env := map[string]string{"FAKELLAMA_TOKENS": "200", "FAKELLAMA_TOKEN_DELAY": "50ms"}
	d.fd.writeSpec(t, "slowgen.yaml", d.fd.specYAML("slowgen", env, "metrics: true"))
	d.waitHealthy("slowgen")
	processing := func() string {
		r := d.call("GET", "/api/v1/instances/slowgen/proxy/metrics", nil)
		m := regexp.MustCompile(`(?m)^llamacpp:requests_processing (\d+)`).FindStringSubmatch(string(r.Body))
		if m == nil {
			t.Fatalf("no requests_processing in /metrics: %s", r)
		}
		return m[1]
	}
	waitUntil := func(what string, cond func() bool) {
		deadline := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 3 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, c := range []struct {
		body   string
		status float64 // logged
	}{
		{`{"model":"slowgen","messages":[]}`, 499},
		{`{"model":"slowgen","stream":true,"messages":[]}`, 200},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(d.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		id := "hangup-" + strconv.Itoa(i)
		fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			id, len(c.body), c.body)
		waitUntil(c.body+" started", func() bool { return processing() == "1" })
		conn.Close()
		waitUntil(c.body+" cancelled", func() bool { return processing() == "0" })
		waitUntil(c.body+" logged", func() bool {
			for _, rec := range d.log.records("proxy") {
				if rec["request_id"] == id && rec["status"] == c.status && rec["error"] != nil {
					return true
				}
			}
			return false
		})
	}
}
