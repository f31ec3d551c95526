package httpapi

import (
	"bufio"
	"encoding/binary"

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
//
// kept is scratch space for the quick pass (see keptHeaders).
func readAnswer(br *bufio.Reader, resp *fasthttp.Response, kept *keptHeaders) (reuse bool, err error) {
	if reuse, ok := quickAnswer(br, resp, kept); ok {
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
func quickAnswer(br *bufio.Reader, resp *fasthttp.Response, scratch *keptHeaders) (reuse, ok bool) {
	buf, _ := br.Peek(br.Buffered())
	code, reason, b, ok := statusLine(buf)
	if !ok {
		return false, false
	}
	// One pass checks every line, finds the framing and keeps aside what
	// the client gets; nothing is set until the answer is known to be
	// one this pass takes.
	kept := scratch[:0]
	length, closes := -1, false
	for {
		if len(b) < 2 {
			return false, false // the head has not all arrived
		}
		if b[0] == '\r' && b[1] == '\n' {
			b = b[2:] // the blank line that ends the head
			break
		}
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
	bodyStart := len(buf) - len(b)
	if length < 0 || length > len(b) {
		return false, false
	}
	// Reset also clears the NoDefaultContentType and NoDefaultDate the
	// server copies into each response; ours sets neither (see New).
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

// keptHeaders holds the header lines of an answer that the client gets,
// as many as the quick pass takes; it is the caller's so that a pass
// needs neither to clear nor to allocate one.
type keptHeaders [16]keptHeader

// keptHeader is a header line of an answer that the client gets.
type keptHeader struct {
	k, v []byte
	kind int // hdrCopy or hdrContentType
}

// statusLine parses an HTTP/1.1 status line that announces a body (2xx
// to 5xx but 204 and 304) at the start of buf: its code, its reason and
// what follows the line.
func statusLine(buf []byte) (code int, reason, rest []byte, ok bool) {
	const proto = "HTTP/1.1 "
	if len(buf) < len(proto)+3 || string(buf[:len(proto)]) != proto {
		return 0, nil, nil, false
	}
	for _, c := range buf[len(proto) : len(proto)+3] {
		if c < '0' || c > '9' {
			return 0, nil, nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		return 0, nil, nil, false
	}
	b := buf[len(proto)+3:]
	if len(b) > 0 && b[0] == ' ' {
		n := fieldRun(b[1:])
		reason, b = b[1:1+n], b[1+n:]
		if n > 0 && (reason[0] == ' ' || reason[0] == '\t') {
			return 0, nil, nil, false
		}
	}
	if len(b) < 2 || b[0] != '\r' || b[1] != '\n' {
		return 0, nil, nil, false
	}
	return code, reason, b[2:], true
}

// headerLine splits the first of the header lines b (each ends in CRLF):
// a token name, a colon, the value without the blanks around it. Not ok
// for anything else (a folded line, a blank before the colon, control
// bytes) or a line not all in b.
func headerLine(b []byte) (k, v, rest []byte, ok bool) {
	n := 0
	for n < len(b) && tokenByte[b[n]] {
		n++
	}
	if n == 0 || n == len(b) || b[n] != ':' {
		return nil, nil, nil, false
	}
	k, b = b[:n], b[n+1:]
	n = fieldRun(b)
	if n+1 >= len(b) || b[n] != '\r' || b[n+1] != '\n' {
		return nil, nil, nil, false
	}
	v, rest = b[:n], b[n+2:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return k, v, rest, true
}

// fieldRun returns how many bytes at the start of b a header value may
// hold (fieldByte). Eight at a time while none is below 0x20 or above
// 0x7e (a tab, allowed, sends the word to the byte loop): the lowest
// such byte of a word sets its bit 7 in x-0x20.., x+0x01.. or x, and
// bytes above it only add false alarms.
func fieldRun(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if ((x-0x2020202020202020)|(x+0x0101010101010101)|x)&0x8080808080808080 != 0 {
			break
		}
	}
	for i < len(b) && fieldByte[b[i]] {
		i++
	}
	return i
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
