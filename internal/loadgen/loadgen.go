// Package loadgen is the load generator of the proxy benchmarks: it sends
// the same chat completions, plain or streamed, to several addresses in
// alternating rounds (so that load from other processes hits them alike)
// and reports each address's request rate and time to first chunk. It
// behaves like wrk: a fixed number of connections, each reused for as long
// as its server keeps it open.
package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Bodies of the benchmarked requests to model "tiny": a small chat
// completion, and the same request streamed.
var (
	Chat   = ChatFor("tiny")
	Stream = StreamFor("tiny")
)

// ChatFor is a small chat completion (8 tokens) for model.
func ChatFor(model string) []byte {
	return []byte(`{"model":"` + model + `","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`)
}

// StreamFor is a streamed chat completion for model.
func StreamFor(model string) []byte {
	return []byte(`{"model":"` + model + `","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
}

// Path is where the requests go.
const Path = "/v1/chat/completions"

// dialer is how the generator connects: a plain dialer as a typical
// client has.
var dialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}

func dial(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) }

// Target is one address to load.
type Target struct {
	Addr string
	Key  string // sent as a Bearer token if set
	// Redial closes the connection after every streamed response. A
	// client of llama-server must (it closes the connection after a
	// stream although it announced keep-alive); a server that keeps the
	// connection open lets the client reuse it.
	Redial bool

	conns   []*conn // one per concurrent worker, kept across rounds
	elapsed time.Duration
	done    int
}

// conn is one worker's connection to a target, dialed on first use and
// whenever the server closed the previous one.
type conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// close closes every connection of t.
func (t *Target) close() {
	for _, c := range t.conns {
		c.drop()
	}
	t.conns = nil
}

func (c *conn) drop() {
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc = nil
	}
}

// Interleave sends n requests with body to every target over conc
// connections each, in short runs that alternate between the targets, and
// returns each target's rate in requests per second. Each worker keeps its
// connection from run to run, so a run pays no dials the previous one did
// not. Any failed request is an error.
//
// The runs follow Sequence, repeated: every target runs right after every
// other equally often. A target that always ran after the same one would
// always find caches and scheduler in the state that one left: after a
// run that loaded the same upstream process, say, which then answers
// faster.
func Interleave(targets []*Target, body []byte, conc, n int, stream bool) ([]float64, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	for _, t := range targets {
		t.conns = make([]*conn, conc)
		for i := range t.conns {
			t.conns[i] = &conn{}
		}
		t.elapsed, t.done = 0, 0
	}
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	seq := Sequence(len(targets))
	perCycle := len(seq) / len(targets) // runs of each target in one pass of seq
	cycles := (minRuns + perCycle - 1) / perCycle
	runs := cycles * perCycle // of each target
	done := make([]int, len(targets))
	for range cycles {
		for _, k := range seq {
			t := targets[k]
			m := n / runs
			if done[k] < n%runs {
				m++
			}
			done[k]++
			if m == 0 {
				continue
			}
			el, err := load(t, body, m, stream)
			if err != nil {
				return nil, err
			}
			t.elapsed += el
			t.done += m
		}
	}
	rates := make([]float64, len(targets))
	for i, t := range targets {
		rates[i] = float64(t.done) / t.elapsed.Seconds()
	}
	return rates, nil
}

// minRuns is the fewest runs Interleave gives each target: enough that a
// burst of load from elsewhere falls on every target alike.
const minRuns = 10

// Sequence returns the order of runs of n targets: read as a cycle, every
// target comes right after every other target exactly once, and never
// right after itself (an Eulerian circuit of the complete directed graph,
// n(n-1) runs, each target n-1 times; [0] for one target). Repeated, it
// stays balanced, its end leading back to its start.
func Sequence(n int) []int {
	if n <= 0 {
		return nil
	}
	if n == 1 {
		return []int{0}
	}
	next := make([]int, n)            // the next successor each target has not led to yet
	succ := func(u int) (int, bool) { // successors in increasing order, skipping u
		v := next[u]
		if v == u {
			v++
		}
		if v >= n {
			return 0, false
		}
		next[u] = v + 1
		return v, true
	}
	// Hierholzer's algorithm, without recursion.
	stack, circuit := []int{0}, make([]int, 0, n*(n-1)+1)
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		if v, ok := succ(u); ok {
			stack = append(stack, v)
			continue
		}
		circuit = append(circuit, u)
		stack = stack[:len(stack)-1]
	}
	slices.Reverse(circuit)
	return circuit[:len(circuit)-1] // the last is the first again
}

// load sends n requests to t over its connections and returns how long
// they took.
func load(t *Target, body []byte, n int, stream bool) (time.Duration, error) {
	var left atomic.Int64
	left.Store(int64(n))
	var failed atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range t.conns {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			setRequest(req, t, body)
			for left.Add(-1) >= 0 {
				if err := t.roundTrip(c, req, resp, stream); err != nil {
					c.drop()
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if f := failed.Load(); f > 0 {
		return el, fmt.Errorf("%d of %d requests to %s failed; first: %w", f, n, t.Addr, first)
	}
	return el, nil
}

func setRequest(req *fasthttp.Request, t *Target, body []byte) {
	req.Reset()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(Path)
	req.Header.SetHost(t.Addr)
	req.Header.SetContentType("application/json")
	if t.Key != "" {
		req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+t.Key)
	}
	req.SetBodyRaw(body)
}

// send writes req on c, dialing first if c has no connection, and reads
// the response header; with stream the body is left to read from
// resp.BodyStream(), else it is read whole.
//
// A kept connection that the server closed while it was idle (llama-server
// does after 5s) fails before any answer; then the request is sent again
// on a new connection, as HTTP clients do.
func (t *Target) send(c *conn, req *fasthttp.Request, resp *fasthttp.Response, stream bool) error {
	reused := c.nc != nil
	err := t.sendOnce(c, req, resp, stream)
	if err != nil && reused && closedBeforeAnswer(err) {
		c.drop()
		err = t.sendOnce(c, req, resp, stream)
	}
	return err
}

// closedBeforeAnswer reports the errors of a connection the server had
// already closed: a failed write, or an end of stream before the first
// response byte (a body cut short is io.ErrUnexpectedEOF, not retried).
func closedBeforeAnswer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (t *Target) sendOnce(c *conn, req *fasthttp.Request, resp *fasthttp.Response, stream bool) error {
	resp.Reset()
	if c.nc == nil {
		nc, err := dial(t.Addr)
		if err != nil {
			return err
		}
		c.nc = nc
		if c.br == nil {
			c.br, c.bw = bufio.NewReaderSize(nc, 16<<10), bufio.NewWriterSize(nc, 4<<10)
		} else {
			c.br.Reset(nc)
			c.bw.Reset(nc)
		}
	}
	if err := req.Write(c.bw); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	resp.StreamBody = stream
	return resp.Read(c.br)
}

// roundTrip sends one request on c and reads its whole answer; the
// connection is closed afterwards if the server asked for that, or after
// a stream if t.Redial.
func (t *Target) roundTrip(c *conn, req *fasthttp.Request, resp *fasthttp.Response, stream bool) error {
	// Streams too are read whole here, chunk by chunk as they arrive: a
	// rate counts complete answers (FirstChunks times the first chunk).
	err := t.send(c, req, resp, false)
	if err == nil && resp.StatusCode() != fasthttp.StatusOK {
		err = fmt.Errorf("status %d: %.200s", resp.StatusCode(), resp.Body())
	}
	if err == nil && (resp.ConnectionClose() || stream && t.Redial) {
		c.drop()
	}
	return err
}

// FirstChunks returns, per target, the median time from sending a
// streamed request to reading the first bytes of its body, over n
// sequential requests to each, alternating between the targets.
func FirstChunks(targets []*Target, n int) ([]time.Duration, error) {
	for _, t := range targets {
		t.conns = []*conn{{}}
	}
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	samples := make([][]time.Duration, len(targets))
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	buf := make([]byte, 4096)
	for range n {
		for i, t := range targets {
			d, err := t.firstChunk(req, resp, buf)
			if err != nil {
				return nil, err
			}
			samples[i] = append(samples[i], d)
		}
	}
	out := make([]time.Duration, len(targets))
	for i, s := range samples {
		slices.Sort(s)
		out[i] = s[len(s)/2]
	}
	return out, nil
}

// firstChunk times one streamed request to t until its first body bytes,
// then reads the rest.
func (t *Target) firstChunk(req *fasthttp.Request, resp *fasthttp.Response, buf []byte) (time.Duration, error) {
	c := t.conns[0]
	setRequest(req, t, Stream)
	start := time.Now()
	if err := t.send(c, req, resp, true); err != nil {
		c.drop()
		return 0, err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		c.drop()
		return 0, fmt.Errorf("stream to %s: status %d", t.Addr, resp.StatusCode())
	}
	bs := resp.BodyStream()
	if bs == nil {
		c.drop()
		return 0, errors.New("stream to " + t.Addr + ": no body stream")
	}
	if _, err := bs.Read(buf); err != nil && err != io.EOF {
		c.drop()
		return 0, err
	}
	d := time.Since(start)
	_, err := io.Copy(io.Discard, bs)
	if cerr := resp.CloseBodyStream(); err == nil {
		err = cerr
	}
	if err != nil || resp.ConnectionClose() || t.Redial {
		c.drop()
	}
	return d, err
}

// Reporter is what ReportFirstChunks needs of a *testing.B.
type Reporter interface {
	Helper()
	Fatal(args ...any)
	ReportMetric(n float64, unit string)
}

// ReportFirstChunks times n streams to first chunk (FirstChunks) straight
// to direct (which closes after each stream) and through proxy, with the
// client keeping its connection to the proxy and dialing anew for every
// stream, and reports the medians and the proxy's overhead in µs.
func ReportFirstChunks(b Reporter, direct, proxy string, n int) {
	b.Helper()
	t, err := FirstChunks([]*Target{{Addr: direct, Redial: true}, {Addr: proxy}, {Addr: proxy, Redial: true}}, n)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(t[0].Microseconds()), "direct-µs")
	b.ReportMetric(float64(t[1].Microseconds()), "proxy-µs")
	b.ReportMetric(float64((t[1] - t[0]).Microseconds()), "overhead-µs")
	b.ReportMetric(float64((t[2] - t[0]).Microseconds()), "overhead-redial-µs")
}
