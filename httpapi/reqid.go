package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

const headerRequestID = "X-Request-Id"

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

// stampRequest gives the request its id, kept on the request (where the
// proxy forwards it and requestID reads it back): a sane incoming
// X-Request-Id is kept, otherwise a new one is made.
func (g *idGen) stampRequest(ctx *fasthttp.RequestCtx) {
	if in := ctx.Request.Header.PeekBytes(hdrRequestID); saneRequestID(in) {
		return
	}
	var buf [40]byte
	id := append(buf[:0], g.prefix...)
	id = strconv.AppendUint(id, g.n.Add(1), 36)
	ctx.Request.Header.SetBytesKV(hdrRequestID, id)
}

// stamp is stampRequest that also puts the id on the response.
func (g *idGen) stamp(ctx *fasthttp.RequestCtx) {
	g.stampRequest(ctx)
	ctx.Response.Header.SetBytesKV(hdrRequestID, requestID(ctx))
}

// requestID returns the id stamp set on the request.
func requestID(ctx *fasthttp.RequestCtx) []byte {
	return ctx.Request.Header.PeekBytes(hdrRequestID)
}

// saneRequestID accepts 1-128 of [A-Za-z0-9._:-].
func saneRequestID(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
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
