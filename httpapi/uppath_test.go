package httpapi

import (
	"net/url"
	"testing"
)

func TestUpstreamPath(t *testing.T) {
	for _, c := range []struct{ raw, prefix, rest, want string }{
		{"/v1/chat/completions", "", "/v1/chat/completions", "/v1/chat/completions"},
		{"/v1/a%3Fb%23c", "", "/v1/a?b#c", "/v1/a%3Fb%23c"},
		{"/api/v1/v1/a%20b", "/api/v1", "/v1/a b", "/v1/a%20b"},
		{"/api/v1/instances/x/proxy", "/api/v1/instances/x/proxy", "/", "/"},
		{"/api/v1/instances/x/proxy/p%2Fq", "/api/v1/instances/x/proxy", "/p/q", "/p%2Fq"},
		// What normalization changed is forwarded as routed.
		{"/v1//a", "", "/v1/a", "/v1/a"},
		{"/v1/x/../a", "", "/v1/a", "/v1/a"},
		{"/v1/x/%2E%2e/a%20b", "", "/v1/a b", "/v1/a%20b"},
		// A prefix spelt otherwise: the routed rest, escaped anew.
		{"/api/v1/instances/%78/proxy/a%3Fb", "/api/v1/instances/x/proxy", "/a?b", "/a%3Fb"},
		{"/v1/chat%2F%2Fcompletions", "", "/v1/chat/completions", "/v1/chat/completions"},
		{"/v1/x/..%2Fa", "", "/v1/a", "/v1/a"},
		{"/v1/a%zz", "", "/v1/a%zz", "/v1/a%zz"}, // as the client sent it
	} {
		if got := upstreamPath([]byte(c.raw), c.prefix, c.rest); got != c.want {
			t.Errorf("upstreamPath(%q, %q, %q) = %q, want %q", c.raw, c.prefix, c.rest, got, c.want)
		}
	}
}

// FuzzEscapePath checks that an escaped path is safe in a request line
// and decodes back to what it escaped.
func FuzzEscapePath(f *testing.F) {
	for _, s := range []string{"/v1/chat/completions", "/a?b#c d", "/%41", "/\r\n\x00\xff", "/é/~!$&'()*+,;=:@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		e := escapePath(p)
		for i := 0; i < len(e); i++ {
			if c := e[i]; c != '%' && !pathSafe(c) {
				t.Fatalf("escapePath(%q) = %q holds %q", p, e, c)
			}
		}
		back, err := url.PathUnescape(e)
		if err != nil || back != p {
			t.Fatalf("escapePath(%q) = %q decodes to %q, %v", p, e, back, err)
		}
	})
}
