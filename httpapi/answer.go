package httpapi

import (
	"bufio"
	"bytes"

	"github.com/valyala/fasthttp"
)

// readAnswer reads an upstream's whole answer from br into resp, its
// headers cleaned for the client (cleanResponseHeaders), and tells
// whether the connection may carry another request.
//
// The common answer (HTTP/1.1, a Content-Length, plain header lines, all
// of it already buffered) is taken in one pass that keeps only the
// headers the client gets; anything else is left to fasthttp's reader,
// which sees the same bytes: the quick pass consumes nothing unless it
// takes the answer. Both give the client the same bytes (FuzzQuickAnswer).
func readAnswer(br *bufio.Reader, resp *fasthttp.Response) (reuse bool, err error) {
	if reuse, ok := quickAnswer(br, resp); ok {
		return reuse, nil
	}
	if err := resp.ReadLimitBody(br, 0); err != nil {
		return false, err
	}
	reuse = reusable(resp)
	cleanResponseHeaders(&resp.Header)
	return reuse, nil
}

// quickAnswer is readAnswer's one pass; ok is false, with br and resp
// untouched, for an answer it leaves to fasthttp.
func quickAnswer(br *bufio.Reader, resp *fasthttp.Response) (reuse, ok bool) {
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlfcrlf)
	if end < 0 {
		return false, false
	}
	head := buf[:end+2] // each line with its CRLF
	code, reason, rest, ok := statusLine(head)
	if !ok {
		return false, false
	}
	// One pass checks every line, finds the framing and keeps aside what
	// the client gets; nothing is set until the answer is known to be
	// one this pass takes.
	var keptArr [16]keptHeader
	kept := keptArr[:0]
	length, closes := -1, false
	for b := rest; len(b) > 0; {
		k, v, next, ok := headerLine(b)
		if !ok {
			return false, false
		}
		b = next
		switch kind := skipResponseHeader(k); kind {
		case hdrFraming:
			if length >= 0 || len(k) != len(fasthttp.HeaderContentLength) {
				return false, false // Transfer-Encoding, or two lengths
			}
			if length = contentLength(v); length < 0 {
				return false, false
			}
		case hdrSkip:
			if len(k) == len(fasthttp.HeaderConnection) && foldEq(k, fasthttp.HeaderConnection) {
				switch {
				case foldEq(v, "close"):
					closes = true
				case !foldEq(v, "keep-alive"):
					return false, false // it may name other headers
				}
			}
		default:
			if kind == hdrCopy && tricky(k) || len(kept) == cap(kept) {
				return false, false
			}
			kept = append(kept, keptHeader{k, v, kind})
		}
	}
	bodyStart := end + 4
	if length < 0 || length > len(buf)-bodyStart {
		return false, false
	}
	resp.Header.Reset()
	resp.Header.SetStatusCode(code)
	if len(reason) > 0 && string(reason) != fasthttp.StatusMessage(code) {
		resp.Header.SetStatusMessage(reason)
	}
	for _, h := range kept {
		if h.kind == hdrContentType {
			resp.Header.SetContentTypeBytes(h.v)
		} else {
			resp.Header.AddBytesKV(h.k, h.v)
		}
	}
	resp.SetBody(buf[bodyStart : bodyStart+length]) // in place of any body
	_, _ = br.Discard(bodyStart + length)
	return !closes, true
}

// keptHeader is a header line of an answer that the client gets.
type keptHeader struct {
	k, v []byte
	kind int // hdrCopy or hdrContentType
}

var crlfcrlf = []byte("\r\n\r\n")

// statusLine parses an HTTP/1.1 status line that announces a body (2xx
// to 5xx but 204 and 304) at the start of head: its code, its reason and
// the header lines after it.
func statusLine(head []byte) (code int, reason, rest []byte, ok bool) {
	const proto = "HTTP/1.1 "
	eol := bytes.IndexByte(head, '\n')
	if eol < len(proto)+3 || head[eol-1] != '\r' || string(head[:len(proto)]) != proto {
		return 0, nil, nil, false
	}
	line := head[len(proto) : eol-1]
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return 0, nil, nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		return 0, nil, nil, false
	}
	if len(line) > 3 {
		if line[3] != ' ' {
			return 0, nil, nil, false
		}
		reason = line[4:]
		for _, c := range reason {
			if !fieldByte[c] {
				return 0, nil, nil, false
			}
		}
		if len(reason) > 0 && (reason[0] == ' ' || reason[0] == '\t') {
			return 0, nil, nil, false
		}
	}
	return code, reason, head[eol+1:], true
}

// headerLine splits the first of the header lines b (each ends in CRLF):
// a token name, a colon, the value without the blanks around it. Not ok
// for anything else (a folded line, a blank before the colon, control
// bytes).
func headerLine(b []byte) (k, v, rest []byte, ok bool) {
	eol := bytes.IndexByte(b, '\n')
	if eol < 1 || b[eol-1] != '\r' {
		return nil, nil, nil, false
	}
	line := b[:eol-1]
	colon := bytes.IndexByte(line, ':')
	if colon < 1 {
		return nil, nil, nil, false
	}
	k = line[:colon]
	for _, c := range k {
		if !tokenByte[c] {
			return nil, nil, nil, false
		}
	}
	v = line[colon+1:]
	for _, c := range v {
		if !fieldByte[c] {
			return nil, nil, nil, false
		}
	}
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return k, v, b[eol+1:], true
}

// tricky tells whether a header the client gets has a meaning to fasthttp
// beyond its value (cookies, trailers, the encoding), left to fasthttp's
// reader.
func tricky(k []byte) bool {
	switch len(k) {
	case 7:
		return foldEq(k, fasthttp.HeaderTrailer)
	case 10:
		return foldEq(k, fasthttp.HeaderSetCookie)
	case 16:
		return foldEq(k, fasthttp.HeaderContentEncoding)
	}
	return false
}

// contentLength parses a Content-Length value: decimal digits, no sign,
// no leading zero, at most 18 of them; -1 for anything else.
func contentLength(v []byte) int {
	if len(v) == 0 || len(v) > 18 || (v[0] == '0' && len(v) > 1) {
		return -1
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// tokenByte and fieldByte are the bytes a header name (RFC 9110 token)
// and a header value (visible ASCII, blanks; no obs-text) may hold.
var tokenByte, fieldByte = func() (tok, field [256]bool) {
	for c := '0'; c <= '9'; c++ {
		tok[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		tok[c], tok[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		tok[c] = true
	}
	for c := 0x20; c < 0x7f; c++ {
		field[c] = true
	}
	field['\t'] = true
	return tok, field
}()
