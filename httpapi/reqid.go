package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

const headerRequestID = "X-Request-Id"

// hdrRequestID is the header name in the canonical form SetCanonical needs.
var hdrRequestID = []byte(headerRequestID)

// idGen makes request ids: a random per-process prefix and a counter,
// unique without a syscall or a lock per request.
type idGen struct {
	prefix []byte
	n      atomic.Uint64
}

func newIDGen() *idGen {
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := make([]byte, 0, 13)
	p = hex.AppendEncode(p, b[:])
	return &idGen{prefix: append(p, '-')}
}

// maxRequestIDLen bounds a kept incoming request id.
const maxRequestIDLen = 128

// stampRequest gives the request its id, kept on the request (where the
// proxy forwards it and requestID reads it back): a sane incoming
// X-Request-Id is kept, otherwise a new one is made. It returns the id
// appended to buf, which the caller owns.
func (g *idGen) stampRequest(ctx *fasthttp.RequestCtx, buf []byte) []byte {
	if in := ctx.Request.Header.PeekBytes(hdrRequestID); saneRequestID(in) {
		return append(buf, in...)
	}
	id := append(buf, g.prefix...)
	id = strconv.AppendUint(id, g.n.Add(1), 36)
	ctx.Request.Header.SetCanonical(hdrRequestID, id)
	return id
}

// stamp is stampRequest that also puts the id on the response.
func (g *idGen) stamp(ctx *fasthttp.RequestCtx) {
	var buf [maxRequestIDLen]byte
	ctx.Response.Header.SetCanonical(hdrRequestID, g.stampRequest(ctx, buf[:0]))
}

// requestID returns the id stamp set on the request.
func requestID(ctx *fasthttp.RequestCtx) []byte {
	return ctx.Request.Header.PeekBytes(hdrRequestID)
}

// saneRequestID accepts 1-maxRequestIDLen of [A-Za-z0-9._:-].
func saneRequestID(b []byte) bool {
	if len(b) == 0 || len(b) > maxRequestIDLen {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
