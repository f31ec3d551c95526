package httpapi

import (
	"net/url"
	"strings"
)

// upstreamPath is the path to forward for a request routed to rest, the
// decoded and normalized path after prefix. It is the client's own
// spelling of that part, still percent-encoded, so that an encoded '?',
// '#', '/' or space stays what it was instead of becoming a query, a
// fragment, another path or a broken request line. When that spelling
// decodes to anything but rest (the raw path does not spell prefix
// literally, or normalization changed it: dot segments, empty segments),
// or would not fit a request line, routing and forwarding must agree:
// rest is escaped anew.
func upstreamPath(raw []byte, prefix, rest string) string {
	if len(raw) < len(prefix) || string(raw[:len(prefix)]) != prefix {
		return escapePath(rest)
	}
	r := raw[len(prefix):]
	if string(r) == rest && requestLineSafe(rest) { // the common case: nothing encoded
		return rest
	}
	s := string(r)
	if dec, err := url.PathUnescape(s); err != nil || dec != rest || !requestLineSafe(s) {
		return escapePath(rest)
	}
	return s
}

// requestLineSafe tells whether a raw path can go into a request line as
// it is: printable ASCII, no '?' or '#' (a query or fragment would start).
func requestLineSafe(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// escapePath percent-encodes a decoded path for a request line: every
// byte but '/' and those RFC 3986 allows in a segment as they are.
func escapePath(p string) string {
	const hexd = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		if pathSafe(c) {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(p)+8), p[:i]...)
		}
		b = append(b, '%', hexd[c>>4], hexd[c&0xf])
	}
	if b == nil {
		return p
	}
	return string(b)
}

// pathSafe is RFC 3986's pchar without '%' (a decoded path holds no
// escapes), plus '/'.
func pathSafe(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}
