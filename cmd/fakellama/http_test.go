package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestChatCompletionJSON(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_TOKENS=5"}, "-m", "/m/tiny.gguf", "--alias", "tiny,small")
	c := newClient(t)
	waitReady(t, p, c)
	r := do(t, c, "POST", p.url("/v1/chat/completions"), `{"model":"routed-x","messages":[{"role":"user","content":"hi"}]}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	for k, want := range map[string]string{
		"Content-Type": ctJSON, "Server": "llama.cpp", "Keep-Alive": keepAliveValue,
		"X-Fake-Instance": "tiny", "X-Fake-Pid": strconv.Itoa(p.cmd.Process.Pid),
		"Content-Length": strconv.Itoa(len(r.body)),
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if _, ok := r.header["Access-Control-Allow-Origin"]; !ok {
		t.Error("no Access-Control-Allow-Origin header")
	}
	var body struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct{ Role, Content string }
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
		Timings struct {
			PredictedN int `json:"predicted_n"`
		} `json:"timings"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	if body.Model != "routed-x" || body.Object != "chat.completion" || !strings.HasPrefix(body.ID, "chatcmpl-") ||
		body.Created == 0 || len(body.Choices) != 1 || body.Choices[0].Message.Role != "assistant" ||
		body.Choices[0].Message.Content == "" || body.Choices[0].FinishReason != "stop" ||
		body.Usage.CompletionTokens != 5 || body.Timings.PredictedN != 5 {
		t.Errorf("unexpected body %s", r.body)
	}
	models := do(t, c, "GET", p.url("/v1/models"), "")
	if !strings.Contains(models.body, `"data":[{"id":"tiny","aliases":["tiny","small"]`) {
		t.Errorf("models %s", models.body)
	}
}

func TestEndpoints(t *testing.T) {
	p := startFake(t, nil, "-m", "/m/tiny.gguf", "--metrics", "--embeddings")
	q := startFake(t, nil, "-m", "/m/tiny.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	waitReady(t, q, c)
	tests := []struct {
		name, method, url, body string
		status                  int
		want                    string // substring of the body
		closes                  bool
	}{
		{"completions", "POST", p.url("/v1/completions"), `{"model":"m","max_tokens":2}`, 200, `"text":"serie Libert","index":0,"logprobs":null,"finish_reason":"length"`, false},
		{"native", "POST", p.url("/completion"), `{"prompt":"hi","n_predict":1}`, 200, `{"index":0,"content":"serie","tokens":[],"id_slot":0,"stop":true,"model":"tiny.gguf"`, false},
		{"embeddings", "POST", p.url("/v1/embeddings"), `{"input":"hi"}`, 200, `"object":"embedding"`, false},
		{"metrics", "GET", p.url("/metrics"), "", 200, "# TYPE llamacpp:prompt_tokens_total counter", false},
		{"props", "GET", p.url("/props"), "", 200, `"model_path": "/m/tiny.gguf"`, false},
		{"slots", "GET", p.url("/slots"), "", 200, `[{"id":0,`, false},
		{"bad json", "POST", p.url("/v1/chat/completions"), `{nope`, 400, `"type":"invalid_request_error"`, false},
		{"not found", "GET", p.url("/nope"), "", 404, bodyNotFound, true},
		{"wrong method", "GET", p.url("/v1/chat/completions"), "", 404, bodyNotFound, true},
		{"embeddings disabled", "POST", q.url("/v1/embeddings"), `{"input":"hi"}`, 501, bodyNoEmbeddings, true},
		{"metrics disabled", "GET", q.url("/metrics"), "", 501, "Start it with `--metrics`", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, tt.method, tt.url, tt.body)
			if r.status != tt.status || !strings.Contains(r.body, tt.want) {
				t.Errorf("%s %s = %d %s, want %d containing %s", tt.method, tt.url, r.status, r.body, tt.status, tt.want)
			}
			if r.close != tt.closes {
				t.Errorf("Connection: close = %v, want %v", r.close, tt.closes)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	p := startFake(t, nil, "-m", "a.gguf", "--api-key", "sekrit")
	c := newClient(t)
	waitReady(t, p, c)
	body := `{"max_tokens":1}`
	tests := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"missing", nil, 401},
		{"wrong", []string{"Authorization", "Bearer nope"}, 401},
		{"bearer", []string{"Authorization", "Bearer sekrit"}, 200},
		{"x-api-key", []string{"X-Api-Key", "sekrit"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, c, "POST", p.url("/v1/chat/completions"), body, tt.hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if tt.status == 401 && r.body != bodyBadAPIKey {
				t.Errorf("body %s", r.body)
			}
		})
	}
	if r := do(t, c, "GET", p.url("/v1/models"), ""); r.status != 200 {
		t.Errorf("/v1/models without key = %d, want 200 (public)", r.status)
	}
}

// rawRequest writes an HTTP/1.1 request on conn.
func rawRequest(conn net.Conn, path, body string) error {
	_, err := io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body)
	return err
}

func TestStreamChunksAndClose(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_TOKENS=6", "FAKELLAMA_TOKEN_DELAY=2ms"}, "-m", "a.gguf", "--alias", "inst")
	c := newClient(t)
	waitReady(t, p, c)
	tests := []struct {
		name, path, body string
		events           int // data events before [DONE] / end
		done             bool
	}{
		{"chat limited", "/v1/chat/completions", `{"model":"m1","stream":true,"max_tokens":4}`, 1 + 4 + 1, true},
		{"chat default", "/chat/completions", `{"stream":true}`, 1 + 6 + 1, true},
		{"completions", "/v1/completions", `{"stream":true,"max_tokens":2}`, 2 + 1, true},
		{"native", "/completion", `{"stream":true,"n_predict":3}`, 3 + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if err := rawRequest(conn, tt.path, tt.body); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" ||
				res.Header.Get("Keep-Alive") != keepAliveValue || res.Header.Get("Connection") != "" ||
				len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" || res.Header.Get("X-Fake-Instance") != "inst" {
				t.Fatalf("status %d headers %v te %v", res.StatusCode, res.Header, res.TransferEncoding)
			}
			b, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("read stream: %v", err)
			}
			events := strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n")
			gotDone := events[len(events)-1] == "data: [DONE]"
			if gotDone {
				events = events[:len(events)-1]
			}
			if len(events) != tt.events || gotDone != tt.done {
				t.Fatalf("%d events (done %v), want %d (done %v):\n%s", len(events), gotDone, tt.events, tt.done, b)
			}
			for _, ev := range events {
				var v map[string]any
				if !strings.HasPrefix(ev, "data: ") || json.Unmarshal([]byte(ev[6:]), &v) != nil {
					t.Fatalf("bad event %q", ev)
				}
				if strings.Contains(tt.path, "chat") && v["object"] != "chat.completion.chunk" {
					t.Errorf("object %v", v["object"])
				}
			}
			if tt.name == "chat limited" && !strings.Contains(events[len(events)-1], `"finish_reason":"length"`) {
				t.Errorf("last event %s", events[len(events)-1])
			}
			if tt.name == "chat limited" && !strings.Contains(events[1], `"model":"m1"`) {
				t.Errorf("model not echoed: %s", events[1])
			}
			// The server closed the connection although it announced
			// Keep-Alive: reusing it fails.
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			_ = rawRequest(conn, "/v1/chat/completions", `{"max_tokens":1}`)
			if _, err := http.ReadResponse(br, nil); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isConnReset(err) {
				t.Fatalf("second request on streamed connection: err %v, want EOF", err)
			}
		})
	}
}

// isConnReset reports a connection reset (not a timeout).
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func TestStreamTokensFlushedIndividually(t *testing.T) {
	const delay = 100 * time.Millisecond
	p := startFake(t, []string{"FAKELLAMA_TOKENS=3", "FAKELLAMA_TOKEN_DELAY=" + delay.String()}, "-m", "a.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	res, err := c.Post(p.url("/v1/chat/completions"), "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// If every token is flushed on its own, the first token arrives at
	// least two token delays before [DONE]; a buffered stream arrives at once.
	sc := bufio.NewScanner(res.Body)
	var first, done time.Time
	for sc.Scan() {
		switch line := sc.Text(); {
		case first.IsZero() && strings.Contains(line, `"delta":{"content":`):
			first = time.Now()
		case line == "data: [DONE]":
			done = time.Now()
		}
	}
	if first.IsZero() || done.IsZero() {
		t.Fatalf("stream lacks a token or [DONE] (err %v)", sc.Err())
	}
	if spread := done.Sub(first); spread < 2*delay*9/10 {
		t.Errorf("first token only %s before [DONE], want >= ~%s", spread, 2*delay)
	}
}

// TestKeepAliveAfterJSON: replies answered whole keep the connection, as
// announced ("max=100"): the hundredth on one connection says
// "Connection: close" and the server closes it, like llama-server's
// cpp-httplib.
func TestKeepAliveAfterJSON(t *testing.T) {
	p := startFake(t, nil, "-m", "a.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for i := 1; i <= keepAliveMax; i++ {
		path := "/v1/chat/completions"
		if i%2 == 0 {
			path = "/completion" // every reply counts, whatever its path
		}
		if err := rawRequest(conn, path, `{"max_tokens":2}`); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d on reused connection: %v", i, err)
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		last := i == keepAliveMax
		if res.StatusCode != 200 || res.Close != last || (res.Header.Get("Keep-Alive") == "") == !last {
			t.Fatalf("response %d: status %d close %v keep-alive %q; want close only on the %dth",
				i, res.StatusCode, res.Close, res.Header.Get("Keep-Alive"), keepAliveMax)
		}
	}
	_ = rawRequest(conn, "/health", "")
	if _, err := http.ReadResponse(br, nil); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isConnReset(err) {
		t.Fatalf("request after the %dth on one connection: err %v, want EOF", keepAliveMax, err)
	}
}

// TestClientGoneCancelsGeneration: a client that hangs up during a
// non-streamed generation cancels it, as llama-server does: requests
// processing drops to 0 long before the generation would have ended.
func TestClientGoneCancelsGeneration(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_TOKENS=200", "FAKELLAMA_TOKEN_DELAY=50ms"}, "-m", "a.gguf", "--metrics") // 10 s
	c := newClient(t)
	waitReady(t, p, c)
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.port))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	processing := func() string {
		m := regexp.MustCompile(`(?m)^llamacpp:requests_processing (\d+)`).FindStringSubmatch(do(t, c, "GET", p.url("/metrics"), "").body)
		if m == nil {
			t.Fatal("no requests_processing in /metrics")
		}
		return m[1]
	}
	deadline := time.Now().Add(3 * time.Second)
	for processing() != "1" {
		if time.Now().After(deadline) {
			t.Fatal("the generation never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn.Close()
	deadline = time.Now().Add(3 * time.Second)
	for processing() != "0" {
		if time.Now().After(deadline) {
			t.Fatal("generation still running 3 s after its client left")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log := p.log(t); !strings.Contains(log, "cancel_tasks") {
		t.Fatalf("no cancel_tasks line in the log:\n%s", log)
	}
}
