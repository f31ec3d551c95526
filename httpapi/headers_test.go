package httpapi

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// upstreamHead returns the head appendRequestHead writes upstream for the
// raw request, parsed, with the names as written.
func upstreamHead(t *testing.T, raw string) *fasthttp.RequestHeader {
	t.Helper()
	var ctx fasthttp.RequestCtx
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	head := appendRequestHead(nil, &ctx, &proxyCall{path: "/v1/x", addr: "127.0.0.1:1"}, true)
	if err := h.Read(bufio.NewReader(bytes.NewReader(head))); err != nil {
		t.Fatalf("%v:\n%s", err, head)
	}
	return &h
}

// Credentials, hop-by-hop headers and Expect stay out of the upstream
// request, in any letter case; Host and the framing are set anew.
func TestRequestHeadDropsHeaders(t *testing.T) {
	var raw strings.Builder
	raw.WriteString("POST /v1/x HTTP/1.1\r\nHost: client\r\n")
	for _, kv := range [][2]string{
		{"authorization", "Bearer a"}, {"X-Api-Key", "k"}, {"Proxy-Authorization", "p"}, {"keep-alive", "5"},
		{"Proxy-Connection", "x"}, {"TE", "trailers"}, {"Upgrade", "h2c"},
		{"Connection", "close"}, {"Expect", "100-continue"}, {"X-Kept", "1"}, {"Content-Type", "application/json"}, {"Cookie", "c=1"},
	} {
		raw.WriteString(kv[0] + ": " + kv[1] + "\r\n")
	}
	raw.WriteString("Content-Length: 2\r\n\r\n{}")
	h := upstreamHead(t, raw.String())
	for _, k := range dropRequestHeaders {
		if v := h.PeekBytes(k); len(v) != 0 {
			t.Errorf("%s: %q kept", k, v)
		}
	}
	for k, want := range map[string]string{"X-Kept": "1", "Content-Type": "application/json", "Cookie": "c=1", "Host": "127.0.0.1:1"} {
		if got := string(h.Peek(k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if h.ConnectionClose() {
		t.Error("the client's Connection: close went upstream")
	}
}

func TestSkipResponseHeader(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"Date", hdrSkip}, {"server", hdrSkip}, {"Connection", hdrSkip}, {"Keep-Alive", hdrSkip},
		{"Content-Type", hdrContentType}, {"content-type", hdrContentType}, {"X-Request-Id", hdrSkip},
		{"Content-Length", hdrFraming}, {"transfer-encoding", hdrFraming}, {"Access-Control-Allow-Origin", hdrSkip},
		{"access-control-max-age", hdrSkip}, {"Access-Control-", hdrCopy}, {"Dates", hdrCopy}, {"X-Upstream", hdrCopy},
		{"Set-Cookie", hdrCopy}, {"Content-Encoding", hdrCopy}, {"", hdrCopy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := skipResponseHeader([]byte(tc.name)); got != tc.want {
				t.Fatalf("skipResponseHeader(%q) = %d, want %d", tc.name, got, tc.want)
			}
		})
	}
}

// FuzzFoldEq checks foldEq against bytes.EqualFold for ASCII names.
func FuzzFoldEq(f *testing.F) {
	for _, k := range []string{"keep-alive", "KEEP-ALIVE", "Keep-Alivf", "Keep_Alive", "Date", "dATE", "@", "`", "[", "{", ""} {
		f.Add(k)
	}
	names := []string{"Keep-Alive", "Date", "Access-Control-", "X-Request-Id", "Transfer-Encoding", "@", "["}
	f.Fuzz(func(t *testing.T, k string) {
		for i := range len(k) {
			if k[i] >= 0x80 {
				return // EqualFold folds some non-ASCII letters; names are ASCII
			}
		}
		for _, n := range names {
			if got, want := foldEq([]byte(k), n), bytes.EqualFold([]byte(k), []byte(n)); got != want {
				t.Fatalf("foldEq(%q, %q) = %v, EqualFold says %v", k, n, got, want)
			}
		}
	})
}

func TestPathString(t *testing.T) {
	for _, p := range []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank", "/", ""} {
		if got := pathString([]byte(p)); got != p {
			t.Errorf("pathString(%q) = %q", p, got)
		}
	}
	b := []byte("/v1/chat/completions")
	if n := testing.AllocsPerRun(100, func() { _ = pathString(b) }); n != 0 {
		t.Errorf("pathString of a known path allocates %v times", n)
	}
}

func TestCleanResponseHeaders(t *testing.T) {
	var h fasthttp.ResponseHeader
	h.DisableNormalizing()
	long := "Access-Control-" + strings.Repeat("X", 60)
	for _, kv := range [][2]string{
		{"Keep-Alive", "timeout=5"}, {"Server", "llama.cpp"}, {"Access-Control-Allow-Origin", ""},
		{"Date", "x"}, {"Connection", "keep-alive"}, {"X-Request-Id", "up"}, {"X-Kept", "1"},
		{"Access-Control-Allow-Headers", "*"}, {"Access-Control-Allow-Methods", "*"}, {"Access-Control-Max-Age", "1"},
		{"Access-Control-Expose-Headers", "x"}, {"access-control-allow-credentials", "true"}, {long, "1"},
		{"Content-Type", "application/json"}, {"Set-Cookie", "a=b"},
	} {
		h.Add(kv[0], kv[1])
	}
	h.SetContentLength(11)
	h.SetConnectionClose()
	cleanResponseHeaders(&h)
	var kept []string
	for k := range h.All() {
		kept = append(kept, string(k))
	}
	slices.Sort(kept)
	got := strings.Join(kept, ",")
	if got != "Content-Length,Content-Type,Set-Cookie,X-Kept" || h.ConnectionClose() || h.ContentLength() != 11 {
		t.Fatalf("kept %s (close %v, length %d)", got, h.ConnectionClose(), h.ContentLength())
	}
}

// Headers named in Connection are hop-by-hop: dropped from the request and
// from the upstream's answer on both the whole and the streamed path; the
// framing, Host and the connection options are never taken for names.
func TestConnectionListedHeaders(t *testing.T) {
	var names []string
	v := []byte(" keep-alive, X-Hop ,,Close, content-length, Host,Transfer-Encoding,x-two")
	for name, rest := nextListed(v); name != nil; name, rest = nextListed(rest) {
		names = append(names, string(name))
	}
	if got := strings.Join(names, "|"); got != "X-Hop|x-two" {
		t.Fatalf("listed %q", got)
	}

	req := upstreamHead(t, "POST /v1/x HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, x-hop, Content-Type\r\nX-Hop: 1\r\n"+
		"Content-Type: application/json\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\n{}")
	if v := req.Peek("X-Hop"); v != nil {
		t.Errorf("request X-Hop kept: %q", v)
	}
	if len(req.ContentType()) != 0 || string(req.Peek("X-Kept")) != "1" || req.ContentLength() != 2 {
		t.Errorf("request head: %q", req.Header())
	}

	newUp := func() *fasthttp.ResponseHeader {
		var h fasthttp.ResponseHeader
		h.DisableNormalizing()
		for _, kv := range [][2]string{{"Connection", "X-Up, Keep-Alive"}, {"x-up", "1"}, {"X-Kept", "1"}} {
			h.Add(kv[0], kv[1])
		}
		h.SetContentLength(3)
		return &h
	}
	for name, h := range map[string]*fasthttp.ResponseHeader{"whole": newUp(), "streamed": {}} {
		if name == "whole" {
			cleanResponseHeaders(h)
		} else {
			copyResponseHeaders(h, newUp())
		}
		var kept []string
		for k := range h.All() {
			kept = append(kept, string(k))
		}
		if got := strings.Join(kept, ","); strings.Contains(strings.ToLower(got), "x-up") || !strings.Contains(got, "X-Kept") {
			t.Errorf("%s: kept %s", name, got)
		}
	}
}

// Every Connection line counts, as a client or upstream may split them.
func TestConnectionOnSeveralLines(t *testing.T) {
	req := upstreamHead(t, "POST /v1/x HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Kept: 1\r\nContent-Length: 0\r\n\r\n")
	if v := req.Peek("X-Hop"); v != nil || string(req.Peek("X-Kept")) != "1" {
		t.Errorf("request: X-Hop %q, X-Kept %q", v, req.Peek("X-Kept"))
	}
	rawResp := "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: X-Up\r\nX-Up: 1\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\nok"
	for _, path := range []string{"whole", "streamed"} {
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(strings.NewReader(rawResp))); err != nil {
			t.Fatal(err)
		}
		h := &resp.Header
		if path == "whole" {
			cleanResponseHeaders(h)
		} else {
			h = &fasthttp.ResponseHeader{}
			copyResponseHeaders(h, &resp.Header)
		}
		if v := h.Peek("X-Up"); v != nil || string(h.Peek("X-Kept")) != "1" {
			t.Errorf("%s response: X-Up %q, X-Kept %q", path, v, h.Peek("X-Kept"))
		}
	}
}

// The streamed path writes its request head itself: headers named in
// Connection stay out of it too.
func TestStreamRequestHeadConnectionListed(t *testing.T) {
	var ctx fasthttp.RequestCtx
	raw := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: X-Hop, x-two\r\n" +
		"X-Hop: secret\r\nX-Two: 2\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\n{}"
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	head := string(appendRequestHead(nil, &ctx, &proxyCall{path: "/v1/chat/completions", addr: "127.0.0.1:1"}, false))
	if strings.Contains(head, "secret") || strings.Contains(head, "X-Two") || !strings.Contains(head, "X-Kept: 1") ||
		strings.Contains(head, "keep-alive") {
		t.Fatalf("request head:\n%s", head)
	}
}
