package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"llamactl/internal/jsonlog"
)

// upstreams holds the connections to llama-server processes, by address.
//
// Real llama-server closes the connection after every streamed (chunked)
// response although it announced keep-alive. So /v1 requests answered
// whole use a keep-alive pool (connPool) that never reuses a connection
// after a chunked answer and sends a request again, once, when a reused
// connection fails before any answer byte; streamed /v1 requests and the
// passthrough take a connection each, pre-dialed where possible
// (spare.go), and ask for it to be closed.
type upstreams struct {
	cfg    Config
	pools  cowMap[*connPool] // by addr, for forwardWhole
	spares sync.Map          // addr -> *spare, see streamConn
	// spareIdle overrides the const spareIdle (tests); set before use.
	spareIdle time.Duration
}

func newUpstreams(cfg Config) *upstreams { return &upstreams{cfg: cfg} }

// pool returns the connection pool of addr (see forwardWhole).
func (u *upstreams) pool(addr string) *connPool {
	if p, ok := u.pools.Load(addr); ok {
		return p
	}
	return u.pools.LoadOrStore(addr, &connPool{
		addr: addr, max: u.cfg.MaxConnsPerUpstream, idleFor: u.cfg.UpstreamIdleTimeout, waitFor: maxConnWait,
	})
}

// maxConnWait bounds how long a request waits for a free connection to
// its upstream when MaxConnsPerUpstream are busy.
const maxConnWait = 30 * time.Second

// upstreamDialer dials llama-server children, which run on this host: a
// dead one resets its connections at once, so TCP keep-alive probes would
// only cost four setsockopt calls per connection (one per stream).
var upstreamDialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}

func dialUpstream(addr string) (net.Conn, error) { return upstreamDialer.Dial("tcp", addr) }

// closeIdle closes every pooled idle upstream connection and every spare.
func (u *upstreams) closeIdle() {
	u.pools.Range(func(_ string, p *connPool) bool {
		p.closeIdle()
		return true
	})
	u.closeSpares()
}

// upstreamStatus is the status of a request its upstream did not answer:
// 504 if it took too long, 503 if every connection to it stayed busy
// (MaxConnsPerUpstream), else 502.
func upstreamStatus(err error) int {
	switch {
	case isTimeout(err):
		return fasthttp.StatusGatewayTimeout
	case errors.Is(err, errNoFreeConn):
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusBadGateway
}

// isTimeout reports whether err is a timeout (fasthttp's or the network's).
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// hop-by-hop and credential headers never forwarded upstream, and Expect.
var dropRequestHeaders = [][]byte{
	[]byte(fasthttp.HeaderAuthorization), hdrXAPIKey,
	[]byte(fasthttp.HeaderConnection), []byte("Keep-Alive"), []byte(fasthttp.HeaderProxyAuthorization),
	[]byte("Proxy-Connection"), []byte(fasthttp.HeaderTE), []byte(fasthttp.HeaderTrailer),
	[]byte(fasthttp.HeaderUpgrade),
	// The body has been read whole before it is forwarded: the upstream
	// has nothing to confirm.
	[]byte(fasthttp.HeaderExpect),
}

// nextListed returns the first header name the Connection header value v
// lists (RFC 9110 7.6.1: hop-by-hop, not forwarded), nil if none, and the
// rest of v. The connection options close and keep-alive are no names,
// nor are those whose handling is the proxy's own: the framing and Host.
// (A plain function, not an iterator, so that v stays on the stack.)
func nextListed(v []byte) (name, rest []byte) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		switch {
		case len(tok) == 0, foldEq(tok, "close"), foldEq(tok, "keep-alive"), foldEq(tok, fasthttp.HeaderHost),
			foldEq(tok, fasthttp.HeaderContentLength), foldEq(tok, fasthttp.HeaderTransferEncoding):
			continue
		}
		return tok, v
	}
	return nil, nil
}

// namesByLen returns, by length, the bit sets of the names of that length
// (there are fewer than 32 names, shorter than 32 bytes).
func namesByLen(names [][]byte) (t [32]uint32) {
	for i, d := range names {
		t[len(d)] |= 1 << i
	}
	return t
}

// proxyCall is one request to forward.
type proxyCall struct {
	addr     string
	path     string // upstream path; the incoming query string is appended
	instance string
	model    string
	apiKey   string // the instance's own llama-server key, sent as Bearer
	release  func() // from Acquire; called when the response ends
	start    time.Time
}

var uriPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// forwardWhole proxies a /v1 request whose answer is not a stream (those
// take forwardStream) on a pooled keep-alive connection (connPool): the
// request head is written anew (credentials and hop-by-hop headers left
// out) and goes out with the untouched body in one write (a small body
// copied after the head) or one writev; the answer is read whole into the
// client's response with its headers cleaned (readAnswer). The body goes
// byte for byte both ways.
//
// A request that fails on a reused connection before any answer byte
// (the upstream had closed it) is sent again once, on a new connection.
// A client that hangs up while the answer is being generated closes the
// connection, which cancels the generation.
func (s *Server) forwardWhole(ctx *fasthttp.RequestCtx, pc proxyCall, id []byte) {
	hb := uriPool.Get().(*[]byte)
	// A small body goes out in one buffer with the head: one write costs
	// less than a writev of two, and the copy less than either.
	var body []byte // sent after head, unless in it
	if b := ctx.Request.Body(); len(b) > inlineBody {
		body = b
	}
	build := func(b []byte) []byte {
		b = appendRequestHead(b[:0], ctx, &pc, true)
		if body == nil {
			b = append(b, ctx.Request.Body()...)
		}
		return b
	}
	head := build(*hb)
	var deadline time.Time
	if s.cfg.ProxyTimeout > 0 {
		deadline = time.Now().Add(s.cfg.ProxyTimeout)
	}
	resp := &ctx.Response
	var c *upConn
	var err error
	var gone, tried bool // tried: an attempt failed after it was sent
	var sentErr error    // how it failed
	for attempt := 1; ; attempt++ {
		// The retry dials anew: the other idle connections are likely
		// as stale as the one that failed.
		var reused bool
		c, reused, err = s.ups.pool(pc.addr).get(attempt > 1, deadline)
		// A refused connection: the process is gone (it crashed), and the
		// request never reached it, unless an attempt before may have
		// (the request may be what killed it).
		for try := 0; refused(err) && !tried && s.reacquire(&pc, try); try++ {
			head = build(head) // a new Host
			c, reused, err = s.ups.pool(pc.addr).get(attempt > 1, deadline)
		}
		if err != nil {
			if sentErr != nil { // the first failure says more
				err = fmt.Errorf("%w (sent again: %w)", sentErr, err)
			}
			break
		}
		if err = c.send(head, body, deadline); err == nil {
			if gone, err = c.await(ctx.Conn()); err == nil {
				break
			}
		}
		c.pool.discard(c)
		c, tried, sentErr = nil, true, err
		// Only a reused connection that fails as a stale one does is
		// taken for closed before the request reached it, and only once.
		if gone || !reused || attempt == 2 || !staleConn(err) {
			break
		}
	}
	*hb = head
	uriPool.Put(hb)
	if c != nil {
		if reuse, rerr := readAnswer(c.br, resp, &c.kept); reuse {
			c.pool.put(c)
		} else {
			err = rerr
			c.pool.discard(c)
		}
	}
	pc.release()
	if err != nil {
		resp.Reset()
		s.restamp(ctx)
		if gone {
			s.clientLeft(ctx, &pc, "client went away while the instance answered")
			return
		}
		status := upstreamStatus(err)
		writeOpenAIError(ctx, status, typeServer, "upstream_error", "",
			"instance "+pc.instance+" did not answer: "+err.Error())
		s.accessLog(ctx, &pc, status, int64(len(ctx.Response.Body())), err)
		return
	}
	s.restamp(ctx)
	s.accessLogID(ctx, &pc, id, resp.StatusCode(), int64(len(resp.Body())), nil)
}

// reusable tells whether the connection that carried resp may carry
// another request: not if the upstream said it closes it, nor after a
// chunked answer (llama-server closes the connection after those,
// whatever it said) or one delimited by the close.
func reusable(resp *fasthttp.Response) bool {
	if resp.ConnectionClose() {
		return false
	}
	switch resp.StatusCode() {
	case fasthttp.StatusNoContent, fasthttp.StatusNotModified:
		return true
	}
	return resp.Header.ContentLength() >= 0
}

// inlineBody is the largest request body forwardWhole copies after the
// head to send both in one write.
const inlineBody = 4 << 10

// refused tells whether err is a refused connection: the instance's
// process is gone (it crashed an instant ago, and its supervisor has not
// seen it yet), and the request never reached it.
func refused(err error) bool { return err != nil && errors.Is(err, syscall.ECONNREFUSED) }

// reacquire releases pc's instance, waits, before try number try, for it
// to be ready again after a refused connection (its supervisor restarts
// it), bounded by AcquireTimeout from the request's start, and points pc
// at it (a new address and release). False, with nothing left to release,
// when it does not become ready in time, or after refusedTries: an
// instance its supervisor still calls ready while it refuses (alive but
// not listening) is answered in a second or two.
func (s *Server) reacquire(pc *proxyCall, try int) bool {
	pc.release() // once only: a second call does nothing
	pc.release = func() {}
	if try >= refusedTries {
		return false
	}
	deadline := pc.start.Add(s.cfg.AcquireTimeout)
	delay := 25 * time.Millisecond << try
	if !time.Now().Add(delay).Before(deadline) {
		return false
	}
	time.Sleep(delay)
	model := pc.model
	if model == "" {
		model = pc.instance // the passthrough names the instance
	}
	actx := lazyDeadlineAt(deadline)
	_, addr, release, err := s.fleet.Acquire(actx, model)
	actx.stop()
	if err != nil {
		return false
	}
	pc.addr, pc.release = addr, release
	return true
}

// refusedTries bounds the waits after refused connections: 25 ms doubling,
// 1.6 s in all, each followed by an acquire that waits for a restart.
const refusedTries = 6

// restamp puts back on a response that an upstream answer replaced the
// CORS headers handle had set on it (handle adds the request id last).
func (s *Server) restamp(ctx *fasthttp.RequestCtx) {
	if s.cors != nil {
		s.cors.apply(ctx)
	}
}

// cleanResponseHeaders removes from an upstream answer what must not
// reach the client: hop-by-hop headers, the upstream's Date and Server
// (ours are sent), its request id and CORS headers (ours, if any). The
// framing (Content-Length, Transfer-Encoding) is left to fasthttp.
//
// One pass collects the names to delete as the header stores them (copied
// aside, since deleting moves the header's storage); each is then
// deleted by that name, which needs no key normalization.
func cleanResponseHeaders(h *fasthttp.ResponseHeader) {
	h.ResetConnectionClose()
	var arena [256]byte
	var endsArr [8]int
	names, ends := arena[:0], endsArr[:0]
	var connBuf [64]byte
	listed := connBuf[:0]
	for k, v := range h.All() {
		// A Date spelt so is left out on the wire when ours is sent
		// (fasthttp's AppendBytes), so it need not be deleted.
		if skipResponseHeader(k) == hdrSkip && string(k) != fasthttp.HeaderDate {
			names = append(names, k...)
			ends = append(ends, len(names))
			if len(k) == len(fasthttp.HeaderConnection) && foldEq(k, fasthttp.HeaderConnection) {
				listed = append(append(listed, ','), v...) // every Connection line counts
			}
		}
	}
	if listsNames(listed) {
		// Headers the upstream names in Connection are hop-by-hop too.
		for k := range h.All() {
			if skipResponseHeader(k) == hdrCopy && isListed(listed, k) {
				names = append(names, k...)
				ends = append(ends, len(names))
			}
		}
	}
	if len(ends) == 0 {
		return
	}
	h.DisableNormalizing()
	defer h.EnableNormalizing()
	start := 0
	for _, end := range ends {
		h.DelBytes(names[start:end])
		start = end
	}
}

// copyResponseHeaders copies upstream headers except hop-by-hop ones, the
// framing (set anew for the client) and CORS (ours, if any).
func copyResponseHeaders(dst *fasthttp.ResponseHeader, src *fasthttp.ResponseHeader) {
	var listed []byte // names in Connection are hop-by-hop too
	if src.Peek(fasthttp.HeaderConnection) != nil {
		listed = namesInConnection(nil, src.All())
	}
	for k, v := range src.All() {
		switch skipResponseHeader(k) {
		case hdrSkip, hdrFraming:
		case hdrContentType:
			dst.SetContentTypeBytes(v)
		default:
			if listed != nil && isListed(listed, k) {
				continue
			}
			dst.AddBytesKV(k, v)
		}
	}
}

// connectionValues appends the values of every Connection header line in
// all to dst, comma-separated.
func connectionValues(dst []byte, all iter.Seq2[[]byte, []byte]) []byte {
	for k, v := range all {
		if len(k) == len(fasthttp.HeaderConnection) && foldEq(k, fasthttp.HeaderConnection) {
			dst = append(append(dst, ','), v...)
		}
	}
	return dst
}

// namesInConnection is connectionValues when they name any header (which
// is then hop-by-hop), nil when they do not: most Connection headers list
// only keep-alive or close.
func namesInConnection(dst []byte, all iter.Seq2[[]byte, []byte]) []byte {
	if dst = connectionValues(dst, all); !listsNames(dst) {
		return nil
	}
	return dst
}

// listsNames tells whether a Connection header value lists any header
// name (most list only keep-alive or close).
func listsNames(connection []byte) bool {
	name, _ := nextListed(connection)
	return name != nil
}

// isListed tells whether a Connection header value lists the name k.
func isListed(connection, k []byte) bool {
	for name, rest := nextListed(connection); name != nil; name, rest = nextListed(rest) {
		if bytes.EqualFold(name, k) {
			return true
		}
	}
	return false
}

const (
	hdrCopy = iota
	hdrSkip
	hdrContentType
	hdrFraming // Content-Length, Transfer-Encoding: fasthttp's to set
)

// skipResponseHeader classifies a response header name for
// copyResponseHeaders; the length picks the few names to compare.
func skipResponseHeader(k []byte) int {
	switch len(k) {
	case 4:
		if foldEq(k, fasthttp.HeaderDate) {
			return hdrSkip
		}
	case 6:
		if foldEq(k, fasthttp.HeaderServer) {
			return hdrSkip
		}
	case 10:
		if foldEq(k, fasthttp.HeaderConnection) || foldEq(k, "Keep-Alive") {
			return hdrSkip
		}
	case 12:
		if foldEq(k, fasthttp.HeaderContentType) {
			return hdrContentType
		}
		if foldEq(k, headerRequestID) {
			return hdrSkip
		}
	case 14:
		if foldEq(k, fasthttp.HeaderContentLength) {
			return hdrFraming
		}
	case 17:
		if foldEq(k, fasthttp.HeaderTransferEncoding) {
			return hdrFraming
		}
	}
	if len(k) > 15 && foldEq(k[:15], "Access-Control-") {
		return hdrSkip
	}
	return hdrCopy
}

// foldEq reports whether the header name k is name, ignoring ASCII case
// (header names are ASCII tokens; name is one).
func foldEq(k []byte, name string) bool {
	if len(k) != len(name) {
		return false
	}
	if string(k) == name { // as a parsed header spells it
		return true
	}
	for i := range len(k) {
		if a, b := k[i], name[i]; a != b {
			if l := a | 0x20; l != b|0x20 || l < 'a' || l > 'z' {
				return false
			}
		}
	}
	return true
}

// accessLog writes the info line of one proxied request.
func (s *Server) accessLog(ctx *fasthttp.RequestCtx, pc *proxyCall, status int, n int64, err error) {
	s.accessLogID(ctx, pc, nil, status, n, err)
}

// accessLogID is accessLog for a caller that has the request id at hand
// (nil: look it up).
func (s *Server) accessLogID(ctx *fasthttp.RequestCtx, pc *proxyCall, id []byte, status int, n int64, err error) {
	if err == nil && s.access != nil {
		s.writeAccessLine(ctx, pc, id, status, n)
		return
	}
	if id == nil {
		id = requestID(ctx)
	}
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Warn().Err(err)
	}
	if ev == nil {
		return
	}
	ev.Bytes("request_id", id).
		Bytes("method", ctx.Method()).
		Bytes("path", ctx.Path()).
		Str("instance", pc.instance).
		Str("model", pc.model).
		Int("status", status).
		Int64("bytes", n).
		Dur("duration", time.Since(pc.start)).
		Msg("proxy")
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeAccessLine writes the line accessLog's zerolog event would, by
// hand: the access log is the one line per request, and an event costs
// several times as much. The duration is in milliseconds
// (zerolog.DurationFieldUnit's default), to the microsecond.
//
// id is the request id, when the caller has it at hand; nil looks it up.
func (s *Server) writeAccessLine(ctx *fasthttp.RequestCtx, pc *proxyCall, id []byte, status int, n int64) {
	end := time.Now()
	bp := linePool.Get().(*[]byte)
	b := append((*bp)[:0], `{"`...)
	b = append(b, zerolog.LevelFieldName...)
	b = append(b, `":"info","request_id":`...)
	if id == nil {
		id = requestID(ctx)
	}
	b = jsonlog.AppendString(b, id)
	b = append(b, `,"method":`...)
	b = jsonlog.AppendString(b, ctx.Method())
	b = append(b, `,"path":`...)
	b = jsonlog.AppendString(b, ctx.Path())
	b = append(b, `,"instance":`...)
	b = jsonlog.AppendString(b, pc.instance)
	b = append(b, `,"model":`...)
	b = jsonlog.AppendString(b, pc.model)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"duration":`...)
	b = appendMillis(b, end.Sub(pc.start))
	b = append(b, `,"`...)
	b = append(b, zerolog.TimestampFieldName...)
	b = append(b, `":`...)
	b = jsonlog.AppendString(b, jsonlog.Timestamp(end))
	b = append(b, `,"`...)
	b = append(b, zerolog.MessageFieldName...)
	b = append(b, `":"proxy"}`+"\n"...)
	_, _ = s.access.Write(b)
	*bp = b
	linePool.Put(bp)
}

// appendMillis appends d in milliseconds with three decimals.
func appendMillis(b []byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	b = strconv.AppendInt(b, us/1000, 10)
	f := us % 1000
	return append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}
