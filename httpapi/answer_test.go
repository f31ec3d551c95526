package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// bufferedAnswer is a reader over raw with as much of it buffered as
// fits, as an upstream connection's reader is once an answer arrived.
func bufferedAnswer(raw []byte) *bufio.Reader {
	br := bufio.NewReaderSize(bytes.NewReader(raw), 16<<10)
	_, _ = br.Peek(min(len(raw), br.Size()))
	return br
}

// clientBytes is what the client gets of resp, as fasthttp writes it:
// the status line, each header's values in order (headers of different
// names in any order: fasthttp's reader leaves them as its deletes
// moved them, the quick pass as the upstream sent them; the Date, the
// time of writing, left out) and the body.
func clientBytes(resp *fasthttp.Response) string {
	head, body, _ := strings.Cut(resp.String(), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	values := map[string][]string{}
	for _, line := range lines[1:] {
		k, v, _ := strings.Cut(line, ": ")
		if k != "Date" {
			values[k] = append(values[k], v)
		}
	}
	return fmt.Sprintf("%s\n%q\n%s", lines[0], values, body)
}

// slowAnswer reads raw as readAnswer does when the quick pass leaves it.
func slowAnswer(raw []byte) (resp *fasthttp.Response, reuse bool, left int, err error) {
	br := bufferedAnswer(raw)
	resp = new(fasthttp.Response)
	if err = resp.ReadLimitBody(br, 0); err != nil {
		return resp, false, 0, err
	}
	reuse = reusable(resp)
	cleanResponseHeaders(&resp.Header)
	return resp, reuse, br.Buffered(), nil
}

// checkQuickAnswer fails t if the quick pass takes raw and the client
// would get from it anything other than what fasthttp's reader gives, or
// if it leaves raw but consumed or set anything. It tells whether the
// quick pass took raw.
func checkQuickAnswer(t *testing.T, raw []byte) bool {
	t.Helper()
	br := bufferedAnswer(raw)
	before := br.Buffered()
	resp := new(fasthttp.Response)
	resp.Header.Set("X-Before", "kept unless taken")
	resp.SetBodyString("before")
	reuse, ok := quickAnswer(br, resp, new(keptHeaders))
	if !ok {
		if br.Buffered() != before || string(resp.Header.Peek("X-Before")) == "" || string(resp.Body()) != "before" {
			t.Fatalf("left %q, but consumed or changed something", raw)
		}
		return false
	}
	want, wantReuse, wantLeft, err := slowAnswer(raw)
	if err != nil {
		t.Fatalf("took %q, which fasthttp rejects: %v", raw, err)
	}
	if got, want := clientBytes(resp), clientBytes(want); got != want {
		t.Fatalf("for %q the client gets\n%q\nfasthttp's reader gives\n%q", raw, got, want)
	}
	if reuse != wantReuse {
		t.Fatalf("for %q reuse %v, fasthttp's reader says %v", raw, reuse, wantReuse)
	}
	if br.Buffered() != wantLeft {
		t.Fatalf("for %q %d bytes left, fasthttp's reader leaves %d", raw, br.Buffered(), wantLeft)
	}
	return true
}

func TestQuickAnswerTakesLlamaServerAnswers(t *testing.T) {
	for _, name := range []string{"chat-completion.txt", "not-found.txt", "completion.txt"} {
		raw, err := os.ReadFile("testdata/llama-server/" + name) // as recorded
		if err != nil {
			t.Fatal(err)
		}
		if !checkQuickAnswer(t, raw) {
			t.Errorf("%s: left to fasthttp", name)
		}
	}
}

func TestQuickAnswer(t *testing.T) {
	const body = `{"ok":true}`
	taken := []struct {
		raw   string
		reuse bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Fake: a\r\n\r\n" + body, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n" + body, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nconnection: Keep-Alive\r\n\r\n" + body, true},
		{"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length:11\r\n\r\n" + body, true},
		{"HTTP/1.1 418 Brewing\r\nContent-Length: 0\r\n\r\n", true},
		{"HTTP/1.1 200\r\nx-lower-case: v \r\nContent-Length: 11\r\nX-Request-Id: theirs\r\nServer: llama.cpp\r\nDate: x\r\nAccess-Control-Allow-Origin: *\r\n\r\n" + body, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n" + body + "HTTP/1.1 200 OK\r\n", true}, // the next answer stays
	}
	for _, c := range taken {
		if !checkQuickAnswer(t, []byte(c.raw)) {
			t.Errorf("left %q", c.raw)
			continue
		}
		resp := new(fasthttp.Response)
		if reuse, _ := quickAnswer(bufferedAnswer([]byte(c.raw)), resp, new(keptHeaders)); reuse != c.reuse {
			t.Errorf("%q: reuse %v", c.raw, reuse)
		}
		for _, h := range []string{"Server", "X-Request-Id", "Access-Control-Allow-Origin", "Connection", "Keep-Alive"} {
			if v := resp.Header.Peek(h); len(v) > 0 {
				t.Errorf("%q: %s %q reaches the client", c.raw, h, v)
			}
		}
	}
	left := []string{
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
		"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 02\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nX-Space : a\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
		"HTTP/1.1 200 OK\r\nX-Bin: \x01\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", // head not all here
		"HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: h\r\n", 17) + "Content-Length: 2\r\n\r\nok",
	}
	for _, raw := range left {
		if checkQuickAnswer(t, []byte(raw)) {
			t.Errorf("took %q", raw)
		}
	}
}

// FuzzQuickAnswer checks that whatever answer the quick pass takes, the
// client gets from it what fasthttp's reader and cleanResponseHeaders
// give, and that it changes nothing of what it leaves.
func FuzzQuickAnswer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Type: application/json; charset=utf-8\r\nServer: llama.cpp\r\nContent-Length: 11\r\nAccess-Control-Allow-Origin: \r\n\r\n{\"ok\":true}",
		"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1\r\nx-a: 2\r\nX-Empty:\r\n\r\n",
		"HTTP/1.1 599 \r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkQuickAnswer(t, raw)
	})
}

// TestFieldRun: fieldRun stops at the first byte a header value may not
// hold wherever it is in its word, and after it at any later one.
func TestFieldRun(t *testing.T) {
	naive := func(b []byte) int {
		for i, c := range b {
			if !fieldByte[c] {
				return i
			}
		}
		return len(b)
	}
	for n := range 20 {
		for p := range n {
			for v := range 256 {
				b := bytes.Repeat([]byte{'~'}, n) // the highest byte allowed
				b[p] = byte(v)
				if p+1 < n {
					b[p+1] = 0xff // a carry or borrow from b[p] into a bad byte
				}
				if got, want := fieldRun(b), naive(b); got != want {
					t.Fatalf("fieldRun(%q) = %d, want %d", b, got, want)
				}
			}
		}
	}
}

// TestServerKeepsResponseDefaults: quickAnswer resets the response
// header, which clears NoDefaultContentType and NoDefaultDate; that is
// only right while the server sets neither.
func TestServerKeepsResponseDefaults(t *testing.T) {
	s := New(Config{}, fleetOf(), ServerInfo{})
	if s.srv.NoDefaultContentType || s.srv.NoDefaultDate {
		t.Fatal("the server sets NoDefaultContentType or NoDefaultDate: quickAnswer must keep them")
	}
}
