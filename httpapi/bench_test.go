package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The proxy benchmarks compare, in the same run, requests sent to
// cmd/fakellama directly with the same requests sent through the proxy
// (with auth off and on). They report rates and their ratios as metrics;
// they assert nothing about speed. Run them with a fixed count, e.g.
//
//	go test -run '^$' -bench Proxy -benchtime 4000x ./httpapi/

var (
	benchChat   = []byte(`{"model":"tiny","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`)
	benchStream = []byte(`{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
)

const benchKey = "sk-bench-0123456789abcdef0123456789abcdef"

// benchDialer is how the load generator connects, to the upstream and to
// the proxy alike: a plain dialer as a typical client has, independent of
// the proxy's own upstream dialer.
var benchDialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}

func benchDial(addr string) (net.Conn, error) { return benchDialer.Dial("tcp", addr) }

// benchServer serves the proxy on a loopback listener until b ends.
func benchServer(b *testing.B, cfg Config, fleet Fleet) string {
	b.Helper()
	// Pooled upstream connections outlive the pauses between the rounds
	// of interleave (tens of milliseconds), as they outlive pauses in use
	// with the default of 4s: a shorter bound would redial every upstream
	// connection each round, a cost the direct target never pays. The
	// bound stays short so that the pool cleaner ends soon after Shutdown.
	cfg.UpstreamIdleTimeout = time.Second
	s := New(cfg, fleet, ServerInfo{})
	s.srv.MaxIdleWorkerDuration = 100 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
		waitPoolCleaners(b, 3*cfg.UpstreamIdleTimeout)
	})
	return ln.Addr().String()
}

// waitPoolCleaners waits, up to limit, until no fasthttp connection pool
// cleaner is running: with no connection left, one ends when it next
// wakes, at most an idle timeout after Shutdown closed the pool.
func waitPoolCleaners(b *testing.B, limit time.Duration) {
	b.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(limit); ; time.Sleep(10 * time.Millisecond) {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte("fasthttp.(*HostClient).connsCleaner")) {
			return
		}
		if time.Now().After(deadline) {
			b.Errorf("upstream pool cleaner still running %v after shutdown", limit)
			return
		}
	}
}

// target is one address to load, with the key it needs.
type target struct {
	addr, key string
	client    *fasthttp.HostClient
	elapsed   time.Duration
	done      int
}

// interleave sends n requests to every target, in ten alternating rounds so
// that load from other processes on the machine hits all targets alike, and
// returns each target's rate in requests per second.
func interleave(b *testing.B, targets []*target, body []byte, conc, n int, stream bool) []float64 {
	b.Helper()
	for _, t := range targets {
		t.client = &fasthttp.HostClient{Addr: t.addr, MaxConns: conc, StreamResponseBody: stream,
			MaxIdleConnDuration: 100 * time.Millisecond, Dial: benchDial}
		t.elapsed, t.done = 0, 0
	}
	const rounds = 10
	for i := range rounds {
		for _, t := range targets {
			m := n/rounds + boolInt(i < n%rounds)
			if m == 0 {
				continue
			}
			t.elapsed += load(b, t.client, t.addr, t.key, body, conc, m, stream)
			t.done += m
		}
	}
	rates := make([]float64, len(targets))
	for i, t := range targets {
		t.client.CloseIdleConnections()
		rates[i] = float64(t.done) / t.elapsed.Seconds()
	}
	return rates
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// load sends n requests over c with conc concurrent connections and
// returns how long they took.
func load(b *testing.B, c *fasthttp.HostClient, addr, key string, body []byte, conc, n int, stream bool) time.Duration {
	b.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for left.Add(-1) >= 0 {
				req.Reset()
				req.Header.SetMethod("POST")
				req.SetRequestURI("/v1/chat/completions")
				req.Header.SetHost(addr)
				req.Header.SetContentType("application/json")
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				req.SetBodyRaw(body)
				if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
					continue
				}
				if stream {
					if bs := resp.BodyStream(); bs != nil {
						_, _ = io.Copy(io.Discard, bs)
					}
					resp.SetConnectionClose() // as llama-server: never reuse after a stream
					_ = resp.CloseBodyStream()
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Errorf("%d of %d requests to %s failed", f, n, addr)
	}
	return el
}

// firstChunks returns, per address, the median time from sending a
// streamed request to reading its first body bytes, over n sequential
// requests to each, alternating between the addresses.
func firstChunks(b *testing.B, addrs []string, n int) []time.Duration {
	b.Helper()
	samples := make([][]time.Duration, len(addrs))
	for range n {
		for i, a := range addrs {
			samples[i] = append(samples[i], firstChunk(b, a))
		}
	}
	out := make([]time.Duration, len(addrs))
	for i, s := range samples {
		slices.Sort(s)
		out[i] = s[len(s)/2]
	}
	return out
}

// firstChunk times one streamed request to its first body bytes.
func firstChunk(b *testing.B, addr string) time.Duration {
	b.Helper()
	c := firstChunkClients[addr]
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	buf := make([]byte, 4096)
	var total time.Duration
	{
		req.Reset()
		req.Header.SetMethod("POST")
		req.SetRequestURI("/v1/chat/completions")
		req.Header.SetHost(addr)
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(benchStream)
		start := time.Now()
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("stream to %s: %v %d", addr, err, resp.StatusCode())
		}
		bs := resp.BodyStream()
		if _, err := bs.Read(buf); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		total = time.Since(start)
		_, _ = io.Copy(io.Discard, bs)
		resp.SetConnectionClose()
		_ = resp.CloseBodyStream()
	}
	return total
}

var firstChunkClients = map[string]*fasthttp.HostClient{}

func BenchmarkProxy(b *testing.B) {
	up := startFakellama(b, "tiny")
	r := &routes{addrs: map[string]string{"tiny": up}}
	fleet := proxyFleet(r)
	open := benchServer(b, Config{}, fleet)
	authed := benchServer(b, Config{RequireInferenceAuth: true, InferenceKeys: []string{benchKey, "second-key"},
		ManagementKeys: []string{"mgmt-key"}}, fleet)

	targets := []*target{{addr: up}, {addr: open}, {addr: authed, key: benchKey}}
	for _, conc := range []int{4, 64} {
		b.Run(fmt.Sprintf("chat/c=%d", conc), func(b *testing.B) {
			rates := interleave(b, targets, benchChat, conc, b.N, false)
			direct, proxied, withAuth := rates[0], rates[1], rates[2]
			b.ReportMetric(direct, "direct-req/s")
			b.ReportMetric(proxied, "proxy-req/s")
			b.ReportMetric(withAuth, "auth-req/s")
			b.ReportMetric(proxied/direct, "ratio")
			b.ReportMetric(withAuth/direct, "ratio-auth")
		})
	}
	b.Run("sse16/c=4", func(b *testing.B) {
		rates := interleave(b, targets, benchStream, 4, b.N, true)
		direct, proxied, withAuth := rates[0], rates[1], rates[2]
		b.ReportMetric(direct, "direct-req/s")
		b.ReportMetric(proxied, "proxy-req/s")
		b.ReportMetric(proxied/direct, "ratio")
		b.ReportMetric(withAuth/direct, "ratio-auth")
	})
	b.Run("ttfc", func(b *testing.B) {
		n := max(b.N/10, 20)
		for _, a := range []string{up, open} {
			firstChunkClients[a] = &fasthttp.HostClient{Addr: a, StreamResponseBody: true, Dial: benchDial,
				MaxIdleConnDuration: 100 * time.Millisecond}
		}
		t := firstChunks(b, []string{up, open}, n)
		for _, c := range firstChunkClients {
			c.CloseIdleConnections()
		}
		direct, proxied := t[0], t[1]
		b.ReportMetric(float64(direct.Microseconds()), "direct-µs")
		b.ReportMetric(float64(proxied.Microseconds()), "proxy-µs")
		b.ReportMetric(float64((proxied - direct).Microseconds()), "overhead-µs")
	})
	b.Run("memory", func(b *testing.B) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MiB")
		b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	})
	if n := r.inFlight.Load(); n != 0 {
		b.Fatalf("%d acquisitions not released", n)
	}
}
