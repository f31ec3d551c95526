package httpapi

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"
)

func FuzzModelFromBody(f *testing.F) {
	f.Add("application/json", []byte(`{"model":"qwen-7b","seed":12345678901234567}`))
	f.Add("application/json", []byte(`{"messages":[{"model":"inner"}],"model":"outer"}`))
	f.Add("application/json", []byte(`{"model":"a","model":"b"}`))
	f.Add("application/json", []byte(`{"model":"\u0000\ud800"}`))
	f.Add("application/json", []byte(`[{"model":"x"}]`))
	f.Add("", []byte(`{"model":`))
	f.Add("multipart/form-data; boundary=XX", []byte("--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XX--\r\n"))
	f.Add("multipart/form-data; boundary=XX", []byte("--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n\x00\x01\r\n--XX--"))
	f.Add("multipart/form-data", []byte("--\r\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m, err := modelFromBody([]byte(ct), body)
		if err != nil {
			if m != "" {
				t.Fatalf("model %q with error %v", m, err)
			}
			return
		}
		if m == "" || len(m) > maxModelLen {
			t.Fatalf("bad model %q accepted", m)
		}
	})
}

func FuzzRoute(f *testing.F) {
	for _, p := range []string{
		"/api/v1/instances", "/api/v1/instances/a", "/api/v1/instances/a/start", "/api/v1/instances/a/logs",
		"/api/v1/instances/a/proxy", "/api/v1/instances/a/proxy/x/y?z", "/api/v1/server/help", "/api/v1/openapi.json",
		"/v1/models", "/v1/models/a", "/v1/chat/completions", "/api/v1/v1/models", "/api/v1x", "//", "/api/v1/instances//",
		"/api/v1/instances/%2e%2e/proxy", "/api/v1/instances/a/proxy/../../../etc",
	} {
		f.Add("GET", p)
		f.Add("POST", p)
	}
	fleet := proxyFleet(&routes{addrs: map[string]string{}})
	h := New(Config{}, fleet, ServerInfo{}).Handler()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	f.Fuzz(func(t *testing.T, method, path string) {
		rt := parseRoute(path)
		switch rt.kind {
		case routeInstance, routeAction, routeLogs, routeProxy:
			if rt.name == "" || strings.Contains(rt.name, "/") {
				t.Fatalf("%q: bad name %q", path, rt.name)
			}
		case routeOpenAI:
			if !strings.HasPrefix(rt.rest, "/v1/") {
				t.Fatalf("%q: OpenAI path %q", path, rt.rest)
			}
		}
		if rt.kind == routeProxy && !strings.HasPrefix(rt.rest, "/") {
			t.Fatalf("%q: proxy rest %q", path, rt.rest)
		}

		// The whole handler, in memory, never panics and always answers
		// with a request id.
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(path)
		req.Header.SetContentType("application/json")
		req.SetBodyString(`{"model":"m"}`)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, remote, nil)
		h(&ctx)
		if len(ctx.Response.Header.Peek(headerRequestID)) == 0 {
			t.Fatalf("%s %q: no request id", method, path)
		}
		if sc := ctx.Response.StatusCode(); sc < 200 || sc > 599 || (sc >= 500 && sc != 500 && sc != 503) {
			t.Fatalf("%s %q: status %d", method, path, sc)
		}
		if bytes.Contains(ctx.Response.Body(), []byte("panic")) {
			t.Fatalf("%s %q: %s", method, path, ctx.Response.Body())
		}
	})
}

// FuzzWantsStream checks the fast path of wantsStream against the plain
// lookup it spares.
func FuzzWantsStream(f *testing.F) {
	for _, b := range []string{`{"model":"a","stream":true}`, `{"model":"a"}`, `{"str\u0065am":true}`,
		`{"stream":false}`, `{"x":"stream","stream":true}`, `{"a":{"stream":true}}`, `{"stream" : true }`} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want := gjson.GetBytes(body, "stream").Type == gjson.True
		if got := wantsStream([]byte("application/json"), body); got != want {
			t.Fatalf("wantsStream(%q) = %v, lookup says %v", body, got, want)
		}
	})
}
