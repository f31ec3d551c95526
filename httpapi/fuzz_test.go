package httpapi

import (
	"bytes"
	"errors"
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
		m, _, err := requestModel([]byte(ct), body)
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
		// What goes upstream fits a request line, whatever the path held.
		var u fasthttp.URI
		if u.Parse(nil, []byte(path)) == nil {
			if urt := parseRoute(string(u.Path())); urt.kind == routeProxy || urt.kind == routeOpenAI {
				if up := upstreamPath(u.PathOriginal(), urt.prefix, urt.rest); !strings.HasPrefix(up, "/") || !requestLineSafe(up) {
					t.Fatalf("%q: upstream path %q", path, up)
				}
			}
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

// oracleModel is requestModel's JSON branch done the plain way, with
// gjson's validator and lookups.
func oracleModel(body []byte) (model string, stream bool, err error) {
	if !gjson.ValidBytes(body) {
		return "", false, errors.New("request body is not valid JSON")
	}
	stream = gjson.GetBytes(body, "stream").Type == gjson.True
	m := gjson.GetBytes(body, "model")
	switch {
	case !m.Exists() || m.Type == gjson.Null:
		return "", stream, errNoModel
	case m.Type != gjson.String:
		return "", stream, errors.New("model must be a string")
	case m.Str == "":
		return "", stream, errNoModel
	case len(m.Str) > maxModelLen:
		return "", stream, errors.New("model name is too long")
	}
	return m.Str, stream, nil
}

// FuzzScanJSON checks the one-pass scan of requestModel against gjson:
// the same bodies valid, the same model or error, the same stream flag.
func FuzzScanJSON(f *testing.F) {
	for _, b := range []string{`{"model":"a","stream":true}`, `{"model":"a"}`, `{"str\u0065am":true,"model":"b"}`,
		`{"stream":false}`, `{"x":"stream","stream":true}`, `{"a":{"stream":true,"model":"in"}}`, `{"stream" : true }`,
		`{"model":"a","model":"b","stream":false,"stream":true}`, `[{"model":"x"}]`, `{"model":null}`, `{"model":7}`,
		`{"model":""}`, `{"model":"\u00e9\ud800"}`, ` {"m":[1,-0.5e+3,true,false,null,"s\n"],"model":"q"} `,
		`{"model":"a",}`, `[1,]`, `01`, `-`, `1.`, `1e`, `"\x"`, `{"a" 1}`, `tru`, `{"model":"a"}x`, ``, ` `,
		`{"model":{"a":[{}]}}`, `{"seed":12345678901234567,"model":"m"}`} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, st, err := requestModel([]byte("application/json"), body)
		wm, wst, werr := oracleModel(body)
		if m != wm || (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("%q: got %q, %v; gjson says %q, %v", body, m, err, wm, werr)
		}
		if err == nil && st != wst {
			t.Fatalf("%q: stream %v, gjson says %v", body, st, wst)
		}
	})
}

// TestScanJSONDeep checks that no nesting depth exhausts the stack: a
// recursive validator (gjson's) overflows it on a body of a few million
// "[", well under the body size limit, and takes the daemon down.
func TestScanJSONDeep(t *testing.T) {
	const depth = 4 << 20
	open := bytes.Repeat([]byte("["), depth)
	if _, _, err := requestModel(nil, open); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("unclosed nesting: %v", err)
	}
	doc := append([]byte(`{"model":"deep","x":`), open...)
	doc = append(doc, bytes.Repeat([]byte("]"), depth)...)
	doc = append(doc, `,"stream":true}`...)
	m, stream, err := requestModel(nil, doc)
	if err != nil || m != "deep" || !stream {
		t.Fatalf("deep document: %q %v %v", m, stream, err)
	}
	doc[len(doc)-len(`,"stream":true}`)-1] = '}' // a mismatched close
	if _, _, err := requestModel(nil, doc); err == nil {
		t.Fatal("mismatched bracket accepted")
	}
}

// TestRequestModelContentType checks that a multipart body is known by its
// media type in any letter case and with leading blanks, and that any
// other type is read as JSON.
func TestRequestModelContentType(t *testing.T) {
	form := []byte("--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--XX--\r\n")
	for _, ct := range []string{"multipart/form-data; boundary=XX", "Multipart/Form-Data; boundary=XX", " \tmultipart/form-data;boundary=XX"} {
		if m, stream, err := requestModel([]byte(ct), form); err != nil || m != "whisper" || stream {
			t.Errorf("%q: %q %v %v", ct, m, stream, err)
		}
	}
	for _, ct := range []string{"", "application/json", "multipart/form", "text/plain"} {
		if _, _, err := requestModel([]byte(ct), form); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Errorf("%q: a form read as %v, want it read as JSON", ct, err)
		}
	}
}
