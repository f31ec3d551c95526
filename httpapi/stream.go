package httpapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/bits"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// forwardStream proxies a request that asked for a streamed answer
// ("stream": true). llama-server closes the connection after every
// streamed response, so such a request never uses a pooled connection: it
// gets a fresh one (pre-dialed if possible, see liveConn), says
// "Connection: close", and the answer's chunks are decoded here so that
// chunks already received leave in one write and one flush (chunkReader)
// while a lone chunk is relayed at once. The request goes out in a single
// writev (headers and the untouched body). The instance passthrough goes
// this way too, whatever its answer.
func (s *Server) forwardStream(ctx *fasthttp.RequestCtx, pc proxyCall) {
	conn, err := s.ups.liveConn(pc.addr)
	// Refused: the process is gone (it crashed), and the request has not
	// been sent: wait for the restart. A request that fails once sent is
	// not sent again: it may have reached a process, and be what killed it.
	for try := 0; refused(err) && s.reacquire(&pc, try); try++ {
		conn, err = s.ups.liveConn(pc.addr)
	}
	if err != nil {
		s.streamFailed(ctx, &pc, nil, err)
		return
	}
	var deadline time.Time
	if s.cfg.ProxyTimeout > 0 {
		deadline = time.Now().Add(s.cfg.ProxyTimeout)
	}
	hb := uriPool.Get().(*[]byte)
	head := appendRequestHead((*hb)[:0], ctx, &pc, false)
	r := streamPool.Get().(*streamRelay)
	r.s, r.ctx, r.pc, r.conn = s, ctx, pc, conn
	if r.br == nil {
		r.br = bufio.NewReaderSize(conn, 16<<10)
	} else {
		r.br.Reset(conn)
	}
	gone := false // the client hung up while the answer was awaited
	err = r.send(head, deadline)
	if err == nil {
		gone, err = r.awaitAnswer(ctx, deadline)
	}
	*hb = head
	uriPool.Put(hb)
	if err == nil {
		err = r.readHeader()
	}
	if err != nil {
		r.reset()
		if gone {
			_ = conn.Close()
			pc.release()
			s.clientLeft(ctx, &pc, "client went away while the instance answered")
			return
		}
		s.streamFailed(ctx, &pc, conn, err)
		return
	}
	ctx.SetStatusCode(r.h.StatusCode())
	copyResponseHeaders(&ctx.Response.Header, &r.h)
	size := r.h.ContentLength()
	switch {
	case ctx.IsHead() || r.h.StatusCode() == fasthttp.StatusNoContent || r.h.StatusCode() == fasthttp.StatusNotModified:
		// No body: the answer ends here. A HEAD answer keeps the length
		// the upstream gave (fasthttp sends no body for it).
		if ctx.IsHead() && size >= 0 {
			ctx.Response.Header.SetContentLength(size)
		}
		r.CloseWithError(nil)
		return
	case size >= 0:
		r.lr = io.LimitedReader{R: r.br, N: int64(size)}
		r.body = &r.lr
	case size == -1: // chunked
		r.cr = chunkReader{br: r.br}
		r.body = &r.cr
	default: // until the upstream closes
		size = -1
		r.body = r.br
	}
	ctx.Response.SetBodyStream(r, size)
}

// maxInterim bounds the interim (1xx) answers skipped before the final one.
const maxInterim = 8

// readHeader reads the head of the final answer, skipping interim ones
// (100 Continue, 103 Early Hints): the client gets only the final answer.
func (r *streamRelay) readHeader() error {
	for n := 0; ; n++ {
		if err := r.h.Read(r.br); err != nil {
			return err
		}
		if code := r.h.StatusCode(); code >= 200 || code < 100 || code == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n == maxInterim {
			return errors.New("too many interim (1xx) answers")
		}
	}
}

// send writes the request (head, then the untouched body) in one writev.
func (r *streamRelay) send(head []byte, deadline time.Time) error {
	_ = r.conn.SetDeadline(deadline)
	r.bufArr = [2][]byte{head, r.ctx.Request.Body()}
	r.bufs = r.bufArr[:]
	_, err := r.bufs.WriteTo(r.conn) // consumes r.bufs, not the array
	r.bufArr = [2][]byte{}
	return err
}

// watchAfter is how long a streamed request waits for the upstream's
// response header before it starts watching for the client hanging up.
const watchAfter = 20 * time.Millisecond

// awaitAnswer waits for the first response byte, consuming nothing. Most
// answers start at once; if this one does not (a long prompt), the client
// connection is watched meanwhile so that a client that hangs up cancels
// the request (gone is then true). deadline is the ProxyTimeout deadline
// (zero: none).
func (r *streamRelay) awaitAnswer(ctx *fasthttp.RequestCtx, deadline time.Time) (gone bool, err error) {
	if r.br.Buffered() > 0 {
		return false, nil
	}
	early := time.Now().Add(watchAfter)
	if !deadline.IsZero() && deadline.Before(early) {
		_, err := r.br.Peek(1)
		return false, err
	}
	_ = r.conn.SetReadDeadline(early)
	_, err = r.br.Peek(1)
	if err == nil || !isTimeout(err) {
		_ = r.conn.SetReadDeadline(deadline)
		return false, err
	}
	// Nothing was consumed, and bufio forgets a read error once returned:
	// wait on, watching.
	_ = r.conn.SetReadDeadline(deadline)
	stop := watchClientGone(ctx.Conn(), r.conn)
	_, err = r.br.Peek(1)
	if gone = stop(); gone && err == nil {
		err = errClientGone // answered, but the connection is closed
	}
	return gone, err
}

// streamFailed answers a streamed request that got no response.
func (s *Server) streamFailed(ctx *fasthttp.RequestCtx, pc *proxyCall, conn net.Conn, err error) {
	if conn != nil {
		_ = conn.Close()
	}
	pc.release()
	status := upstreamStatus(err)
	msg := "instance " + pc.instance + " did not answer: " + err.Error()
	if isOpenAIPath(string(ctx.Path())) {
		writeOpenAIError(ctx, status, typeServer, "upstream_error", "", msg)
	} else {
		writeError(ctx, status, msg, nil)
	}
	s.accessLog(ctx, pc, status, int64(len(ctx.Response.Body())), err)
}

// appendRequestHead writes the upstream request line and headers; a
// keepAlive request leaves its connection open for the next, others ask
// for "Connection: close".
func appendRequestHead(b []byte, ctx *fasthttp.RequestCtx, pc *proxyCall, keepAlive bool) []byte {
	b = append(b, ctx.Method()...)
	b = append(b, ' ')
	b = append(b, pc.path...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		b = append(b, '?')
		b = append(b, q...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, pc.addr...)
	b = append(b, "\r\n"...)
	var listed []byte // headers named in Connection are hop-by-hop too
	if ctx.Request.Header.Peek(fasthttp.HeaderConnection) != nil {
		listed = namesInConnection(nil, ctx.Request.Header.All())
	}
	for k, v := range ctx.Request.Header.All() {
		if skipRequestHeader(k) || listed != nil && isListed(listed, k) {
			continue
		}
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	if pc.apiKey != "" {
		b = append(b, "Authorization: Bearer "...)
		b = append(b, pc.apiKey...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(ctx.Request.Body())), 10)
	if keepAlive {
		return append(b, "\r\n\r\n"...)
	}
	return append(b, "\r\nConnection: close\r\n\r\n"...)
}

// rewrittenHeaders are the request headers not copied to a request
// written anew (appendRequestHead): credentials and hop-by-hop ones
// (dropRequestHeaders), Host and the framing, which are set anew.
var rewrittenHeaders = append(dropRequestHeaders[:len(dropRequestHeaders):len(dropRequestHeaders)],
	[]byte(fasthttp.HeaderHost), []byte(fasthttp.HeaderContentLength), []byte(fasthttp.HeaderTransferEncoding))

// rewrittenByLen[n] is the bit set of the rewrittenHeaders n bytes long.
var rewrittenByLen = namesByLen(rewrittenHeaders)

// skipRequestHeader reports the rewrittenHeaders; the length picks the
// few names to compare.
func skipRequestHeader(k []byte) bool {
	if len(k) >= len(rewrittenByLen) {
		return false
	}
	for c := rewrittenByLen[len(k)]; c != 0; c &= c - 1 {
		if bytes.EqualFold(k, rewrittenHeaders[bits.TrailingZeros32(c)]) {
			return true
		}
	}
	return false
}

// streamRelay is the client-facing body of a streamed response, read by
// the fasthttp server goroutine; CloseWithError closes the upstream
// connection, which also cancels a generation the client abandoned.
type streamRelay struct {
	s      *Server
	ctx    *fasthttp.RequestCtx
	conn   net.Conn
	br     *bufio.Reader
	h      fasthttp.ResponseHeader
	cr     chunkReader
	lr     io.LimitedReader
	body   io.Reader
	pc     proxyCall
	n      int64
	bufArr [2][]byte   // send's writev buffers, kept to spare an allocation
	bufs   net.Buffers // over bufArr
}

var streamPool = sync.Pool{New: func() any { return new(streamRelay) }}

func (r *streamRelay) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	r.n += int64(n)
	if n > 0 {
		// A stream may outlast WriteTimeout; give every write its own.
		_ = r.ctx.SetWriteDeadline(time.Now().Add(r.s.cfg.WriteTimeout))
	}
	return n, err
}

// CloseWithError ends the relay; err is the client-side write error.
func (r *streamRelay) CloseWithError(err error) error {
	_ = r.conn.Close()
	r.pc.release()
	r.s.accessLog(r.ctx, &r.pc, r.ctx.Response.StatusCode(), r.n, err)
	r.reset()
	return nil
}

// reset returns r to the pool, keeping its buffers (the read buffer and
// the header's parsed fields) for the next stream.
func (r *streamRelay) reset() {
	r.br.Reset(nil)
	r.h.Reset()
	r.s, r.ctx, r.conn, r.body = nil, nil, nil, nil
	r.cr, r.lr, r.pc, r.n = chunkReader{}, io.LimitedReader{}, proxyCall{}, 0
	streamPool.Put(r)
}
