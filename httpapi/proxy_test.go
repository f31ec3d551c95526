package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"llamactl/reconcile"
	"llamactl/runtime"
	"llamactl/spec"
)

// seen is what an echo upstream received.
type seen struct {
	Method, Path, Query, Auth, APIKey, RequestID, Body string
}

// echoUpstream answers every request with a JSON description of it.
func echoUpstream(t *testing.T) (addr string, last func() seen) {
	t.Helper()
	var mu sync.Mutex
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		s = seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"),
			r.Header.Get("X-Request-Id"), string(b)}
		out, _ := json.Marshal(s)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "echo")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() seen { mu.Lock(); defer mu.Unlock(); return s }
}

func proxyFleet(r *routes) *fakeFleet {
	f := fleetOf(sample("withkey", runtime.PhaseRunning))
	f.AcquireFn = func(ctx context.Context, model string) (string, string, func(), error) {
		switch model {
		case "stopped":
			return "", "", nil, fmt.Errorf("acquire stopped: %w", runtime.ErrStopped)
		case "failed":
			return "", "", nil, fmt.Errorf("acquire failed: %w", runtime.ErrFailed)
		case "slow":
			return "", "", nil, fmt.Errorf("acquire slow: %w", runtime.ErrNotReady)
		}
		return r.acquire(ctx, model)
	}
	base := f.GetFn
	f.GetFn = func(name string) (reconcile.InstanceStatus, error) {
		if _, ok := r.addrs[name]; ok && name != "withkey" {
			st := sample(name, runtime.PhaseRunning)
			st.Spec = nil
			return st, nil
		}
		switch name {
		case "stopped", "failed", "slow":
			return sample(name, runtime.PhaseStopped), nil
		}
		return base(name)
	}
	return f
}

func TestOpenAIProxyRouting(t *testing.T) {
	echo, last := echoUpstream(t)
	r := &routes{addrs: map[string]string{"echo": echo, "withkey": echo}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	jsonCT := []string{"Content-Type", "application/json", "Authorization", "Bearer client-key", "X-API-Key", "client-key"}

	body := []byte(`{"model":"echo","seed":12345678901234567,"temperature":0.10000000000000001,"messages":[{"role":"user","content":"hi \u00e9"}]}`)
	resp, out := ts.do(t, "POST", "/v1/chat/completions?q=1", body, jsonCT...)
	expect(t, resp, out, 200)
	got := last()
	if got.Body != string(body) {
		t.Fatalf("body not forwarded byte for byte:\n got %s\nwant %s", got.Body, body)
	}
	if got.Path != "/v1/chat/completions" || got.Query != "q=1" || got.Method != "POST" {
		t.Fatalf("upstream saw %+v", got)
	}
	if got.Auth != "" || got.APIKey != "" {
		t.Fatalf("client credentials forwarded: %+v", got)
	}
	if got.RequestID == "" || got.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("request id %q not forwarded (response %q)", got.RequestID, resp.Header.Get("X-Request-Id"))
	}
	if resp.Header.Get("X-Upstream") != "echo" {
		t.Fatalf("upstream headers not relayed: %v", resp.Header)
	}

	// A streamed request takes its own path upstream: same guarantees.
	sbody := []byte(`{"model":"withkey","stream":true,"seed":12345678901234567,"n":1.0e0}`)
	resp, out = ts.do(t, "POST", "/v1/chat/completions?x=y", sbody, append(jsonCT, "Cookie", "c=1")...)
	expect(t, resp, out, 200)
	if got := last(); got.Body != string(sbody) || got.Auth != "Bearer sk-instance-secret" || got.APIKey != "" ||
		got.Path != "/v1/chat/completions" || got.Query != "x=y" || got.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("streamed request: upstream saw %+v", got)
	}

	// The seed's path under /api/v1 works too; an instance's own key is sent.
	resp, out = ts.do(t, "POST", "/api/v1/v1/completions", []byte(`{"model":"withkey","prompt":"x"}`), jsonCT...)
	expect(t, resp, out, 200)
	if got := last(); got.Path != "/v1/completions" || got.Auth != "Bearer sk-instance-secret" {
		t.Fatalf("upstream saw %+v", got)
	}

	tests := []struct {
		name   string
		body   string
		status int
		want   []string
	}{
		{"missing model", `{"messages":[]}`, 400, []string{`"type":"invalid_request_error"`, `"param":"model"`, `"code":"model_required"`}},
		{"empty model", `{"model":""}`, 400, []string{`"code":"model_required"`}},
		{"null model", `{"model":null}`, 400, []string{`"code":"model_required"`}},
		{"number model", `{"model":7}`, 400, []string{`"param":"model"`}},
		{"unknown model", `{"model":"nope"}`, 400, []string{`"code":"model_not_found"`, `"param":"model"`, "nope"}},
		{"not json", `model=echo`, 400, []string{"not valid JSON"}},
		{"stopped", `{"model":"stopped"}`, 503, []string{`"code":"model_stopped"`, "start"}},
		{"failed", `{"model":"failed"}`, 503, []string{`"code":"model_failed"`}},
		{"not ready", `{"model":"slow"}`, 503, []string{`"code":"model_not_ready"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := ts.do(t, "POST", "/v1/chat/completions", []byte(tc.body), jsonCT...)
			expect(t, resp, out, tc.status, tc.want...)
		})
	}

	t.Run("no param for the body", func(t *testing.T) {
		resp, out := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":`), jsonCT...)
		expect(t, resp, out, 400, "not valid JSON", `"param":null`)
	})
	t.Run("multipart", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "a.wav")
		_, _ = fw.Write([]byte("RIFF....WAVE"))
		_ = mw.WriteField("model", "echo")
		_ = mw.Close()
		resp, out := ts.do(t, "POST", "/v1/audio/transcriptions", buf.Bytes(), "Content-Type", mw.FormDataContentType())
		expect(t, resp, out, 200)
		if got := last(); got.Path != "/v1/audio/transcriptions" || got.Body != buf.String() {
			t.Fatalf("upstream saw %+v", got)
		}
	})
	t.Run("GET not allowed", func(t *testing.T) {
		resp, out := ts.do(t, "GET", "/v1/chat/completions", nil)
		expect(t, resp, out, 405, `"type":"invalid_request_error"`)
	})
	if n := r.inFlight.Load(); n != 0 {
		t.Fatalf("%d acquisitions not released", n)
	}
}

func TestModels(t *testing.T) {
	f := fleetOf(sample("a", runtime.PhaseRunning), sample("b", runtime.PhaseSleeping))
	ts := newTestServer(t, Config{}, f, ServerInfo{})
	for _, p := range []string{"/v1/models", "/api/v1/v1/models"} {
		resp, body := ts.do(t, "GET", p, nil)
		expect(t, resp, body, 200)
		var l openAIModelList
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		if l.Object != "list" || len(l.Data) != 2 || l.Data[0].ID != "a" || l.Data[0].OwnedBy != "llamactl" ||
			l.Data[0].Object != "model" || l.Data[0].Created != 1700000000 || l.Data[1].Phase != "sleeping" ||
			len(l.Data[0].Aliases) != 1 || l.Data[0].Aliases[0] != "a-alias" {
			t.Fatalf("models %s", body)
		}
	}
	resp, body := ts.do(t, "GET", "/v1/models/b", nil)
	expect(t, resp, body, 200, `"id":"b"`)
	resp, body = ts.do(t, "GET", "/v1/models/a-alias", nil)
	expect(t, resp, body, 200, `"id":"a"`)
	resp, body = ts.do(t, "GET", "/v1/models/zz", nil)
	expect(t, resp, body, 404, `"code":"model_not_found"`)
	// Every GET resource answers HEAD: the same status and length, no body.
	for _, p := range []string{"/v1/models", "/v1/models/b", "/api/v1/instances", "/api/v1/instances/a", "/api/v1/openapi.json", "/api/v1/status"} {
		get, getBody := ts.do(t, "GET", p, nil)
		head, headBody := ts.do(t, "HEAD", p, nil)
		if head.StatusCode != 200 || get.StatusCode != 200 || len(headBody) != 0 || head.ContentLength != int64(len(getBody)) {
			t.Errorf("HEAD %s: %d, length %d, %d body bytes; GET gave %d with %d bytes", p, head.StatusCode, head.ContentLength, len(headBody), get.StatusCode, len(getBody))
		}
	}
	resp, body = ts.do(t, "DELETE", "/v1/models", nil)
	expect(t, resp, body, 405)
	if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}
}

func TestInstanceProxy(t *testing.T) {
	echo, last := echoUpstream(t)
	r := &routes{addrs: map[string]string{"echo": echo, "withkey": echo}}
	cfg := Config{RequireManagementAuth: true, ManagementKeys: []string{"mgmt-key"}}
	ts := newTestServer(t, cfg, proxyFleet(r), ServerInfo{})
	auth := []string{"Authorization", "Bearer mgmt-key", "X-API-Key", "mgmt-key"}
	tests := []struct {
		name, method, path, body string
		status                   int
		upPath, upQuery, upAuth  string
	}{
		{"get sub-path", "GET", "/api/v1/instances/echo/proxy/props?a=1&b=2", "", 200, "/props", "a=1&b=2", ""},
		{"bare", "GET", "/api/v1/instances/echo/proxy", "", 200, "/", "", ""},
		{"deep post", "POST", "/api/v1/instances/echo/proxy/v1/chat/completions", `{"x":1}`, 200, "/v1/chat/completions", "", ""},
		{"put", "PUT", "/api/v1/instances/echo/proxy/slots/0?action=save", `{}`, 200, "/slots/0", "action=save", ""},
		{"instance key", "GET", "/api/v1/instances/withkey/proxy/health", "", 200, "/health", "", "Bearer sk-instance-secret"},
		// Escapes go upstream as they came: no path turned into a query,
		// no query lost, no space in the request line.
		{"escaped path", "GET", "/api/v1/instances/echo/proxy/a%3Fb%2Fc%20d%23e?q=%2F", "", 200, "/a?b/c d#e", "q=%2F", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			if tc.body != "" {
				b = []byte(tc.body)
			}
			resp, out := ts.do(t, tc.method, tc.path, b, auth...)
			expect(t, resp, out, tc.status)
			got := last()
			if got.Method != tc.method || got.Path != tc.upPath || got.Query != tc.upQuery || got.Body != tc.body ||
				got.Auth != tc.upAuth || got.APIKey != "" {
				t.Fatalf("upstream saw %+v", got)
			}
		})
	}
	t.Run("chunked request body", func(t *testing.T) {
		req, _ := http.NewRequest("POST", ts.base+"/api/v1/instances/echo/proxy/completion", io.MultiReader(strings.NewReader(`{"prompt":`), strings.NewReader(`"x"}`)))
		req.Header.Set("X-API-Key", "mgmt-key")
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || last().Body != `{"prompt":"x"}` {
			t.Fatalf("status %d %s; upstream saw %+v", resp.StatusCode, out, last())
		}
	})
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/api/v1/instances/stopped/proxy/health", 503},
		{"/api/v1/instances/failed/proxy/", 503},
		{"/api/v1/instances/zz/proxy/health", 404},
		{"/api/v1/instances/..x/proxy/health", 400},
	} {
		resp, out := ts.do(t, "GET", tc.path, nil, auth...)
		expect(t, resp, out, tc.status)
	}
	resp, out := ts.do(t, "GET", "/api/v1/instances/echo/proxy/props", nil)
	expect(t, resp, out, 401)
	if n := r.inFlight.Load(); n != 0 {
		t.Fatalf("%d acquisitions not released", n)
	}
}

// TestStreamRelayedChunkByChunk proves the proxy does not buffer: the
// upstream sends the second event only after the client has read the first.
func TestStreamRelayedChunkByChunk(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			if i < 2 {
				select {
				case <-next:
				case <-time.After(5 * time.Second):
					return
				}
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	r := &routes{addrs: map[string]string{"s": up.Listener.Addr().String()}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})

	resp, err := http.Post(ts.base+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"s","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.StatusCode != 200 {
		t.Fatalf("status %d content type %q", resp.StatusCode, ct)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: {\"n\":%d}\n", i); line != want {
			t.Fatalf("event %d = %q, want %q", i, line, want)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			next <- struct{}{} // only now may the upstream send the next event
		}
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "data: [DONE]\n\n" {
		t.Fatalf("tail %q", rest)
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// TestClientDisconnectCancelsUpstream: closing the client connection
// mid-stream closes the upstream request and releases the instance.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				close(cancelled)
				return
			case <-tick.C:
				if _, err := fmt.Fprint(w, "data: {\"t\":\"x\"}\n\n"); err != nil {
					close(cancelled)
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(up.Close)
	r := &routes{addrs: map[string]string{"s": up.Listener.Addr().String()}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})

	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"model":"s","stream":true}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			break
		}
	}
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not cancelled after the client went away")
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAcquireWaitsBounded: a sleeping instance is woken by Acquire and the
// request waits for it; a wake that takes longer than AcquireTimeout is a
// 503, and an upstream slower than ProxyTimeout is a 504.
func TestAcquireWaitsBounded(t *testing.T) {
	echo, _ := echoUpstream(t)
	stop := make(chan struct{})
	slowUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(slowUp.Close)
	t.Cleanup(func() { close(stop) })
	f := fleetOf()
	var woken atomic.Bool
	f.AcquireFn = func(ctx context.Context, model string) (string, string, func(), error) {
		switch model {
		case "sleepy": // wakes after 100ms
			select {
			case <-time.After(100 * time.Millisecond):
				woken.Store(true)
				return model, echo, func() {}, nil
			case <-ctx.Done():
				return "", "", nil, ctx.Err()
			}
		case "never": // never wakes
			<-ctx.Done()
			return "", "", nil, fmt.Errorf("wait for %s: %w", model, ctx.Err())
		case "hangs":
			return model, slowUp.Listener.Addr().String(), func() {}, nil
		}
		return "", "", nil, reconcile.ErrNotFound
	}
	ts := newTestServer(t, Config{AcquireTimeout: 300 * time.Millisecond, ProxyTimeout: 200 * time.Millisecond}, f, ServerInfo{})
	ct := []string{"Content-Type", "application/json"}
	resp, body := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"sleepy"}`), ct...)
	expect(t, resp, body, 200)
	if !woken.Load() {
		t.Fatal("answered before the instance woke")
	}
	start := time.Now()
	resp, body = ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"never"}`), ct...)
	expect(t, resp, body, 503, `"code":"model_not_ready"`)
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Fatalf("gave up after %v, want about the 300ms AcquireTimeout", el)
	}
	for _, stream := range []string{"false", "true"} {
		resp, body = ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"hangs","stream":`+stream+`}`), ct...)
		expect(t, resp, body, 504, `"code":"upstream_error"`)
	}
}

// TestClientGoneBeforeFirstByte: a client that hangs up while the
// upstream is still processing the prompt (no response byte yet) cancels
// the upstream request.
func TestClientGoneBeforeFirstByte(t *testing.T) {
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"s","stream":true}`},
		{"/v1/chat/completions", `{"model":"s"}`},
		{"/api/v1/instances/s/proxy/completion", `{"prompt":"hi"}`},
	} {
		t.Run(c.path+" "+c.body, func(t *testing.T) { clientGoneBeforeFirstByte(t, c.path, c.body) })
	}
}

func clientGoneBeforeFirstByte(t *testing.T, path, body string) {
	cancelled := make(chan struct{})
	stop := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // net/http notices a closed connection only after the body
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-stop:
		}
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(stop) })
	r := &routes{addrs: map[string]string{"s": up.Listener.Addr().String()}}
	var logs syncBuffer
	log := zerolog.New(&logs)
	ts := newTestServer(t, Config{Logger: &log}, proxyFleet(r), ServerInfo{})

	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	waitFor(t, "acquire", func() bool { return r.inFlight.Load() == 1 })
	time.Sleep(2 * watchAfter) // the generation is under way
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not cancelled after the client went away")
	}
	waitFor(t, "release", func() bool { return r.inFlight.Load() == 0 })
	waitFor(t, "access line", func() bool { return strings.Contains(logs.String(), `"status":499`) })
}

// TestStreamAfterSlowPrompt: an upstream that takes a while before its
// first byte (prompt processing), then streams, is relayed intact.
func TestStreamAfterSlowPrompt(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(80 * time.Millisecond)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(up.Close)
	r := &routes{addrs: map[string]string{"s": up.Listener.Addr().String()}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	resp, body := ts.do(t, "POST", "/v1/completions", []byte(`{"model":"s","stream":true}`), "Content-Type", "application/json")
	expect(t, resp, body, 200)
	if string(body) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
		t.Fatalf("body %q", body)
	}
}

func TestWithoutLog(t *testing.T) {
	for in, want := range map[string]string{
		"start: exit status 1; last log lines:\nload /secret/model.gguf\nprompt text": "start: exit status 1",
		"instance not ready: startup timeout":                                         "instance not ready: startup timeout",
		"first line\nsecond":                                                          "first line",
	} {
		if got := withoutLog(in); got != want {
			t.Errorf("withoutLog(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenAIModelAliases(t *testing.T) {
	alias := "x, y,multi"
	st := reconcile.InstanceStatus{Name: "multi", Spec: &spec.Spec{Alias: &alias}}
	if got := toOpenAIModel(&st).Aliases; !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("aliases %q, want x and y (the name left out)", got)
	}
}

// TestBodySizesForwarded: bodies below, at and above inlineBody (copied
// after the head, or sent after it in a writev) reach the upstream byte
// for byte, one after another on the pooled connection.
func TestBodySizesForwarded(t *testing.T) {
	addr, last := echoUpstream(t)
	r := &routes{addrs: map[string]string{"m": addr}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	for _, size := range []int{0, 1, inlineBody - 20, inlineBody - 19, inlineBody, inlineBody + 1, 200 << 10} {
		pad := strings.Repeat("x", size)
		body := `{"model":"m","pad":"` + pad + `"}`
		resp, out := ts.do(t, "POST", "/v1/chat/completions", []byte(body), "Content-Type", "application/json")
		expect(t, resp, out, 200)
		if got := last().Body; got != body {
			t.Fatalf("pad %d: upstream got %d bytes, want the %d sent", size, len(got), len(body))
		}
	}
}
