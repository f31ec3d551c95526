package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"llamactl/internal/loadgen"
	"llamactl/reconcile"
	rt "llamactl/runtime"
)

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

// bareForwarder serves the simplest fasthttp reverse proxy to upstream (no
// routing, auth, header hygiene, request ids or logging), the reference
// for what forwarding itself costs here.
func bareForwarder(b *testing.B, upstream string) string {
	b.Helper()
	c := &fasthttp.HostClient{Addr: upstream, MaxIdleConnDuration: time.Second, Dial: dialUpstream}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if err := c.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			}
		},
		MaxIdleWorkerDuration: 100 * time.Millisecond,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	b.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
		c.CloseIdleConnections()
		waitPoolCleaners(b, 3*time.Second)
	})
	return ln.Addr().String()
}

const benchKey = "sk-bench-0123456789abcdef0123456789abcdef"

// BenchmarkProxy compares, in the same run, requests sent to cmd/fakellama
// directly with the same requests sent through the proxy, with auth off
// and on. It reports rates and their ratios as metrics and asserts nothing
// about speed. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench Proxy -benchtime 4000x ./httpapi/
//
// The load generator reuses a connection for as long as its server keeps
// it open, as wrk and the OpenAI client libraries do. fakellama, like
// llama-server, closes the connection after every stream; the proxy keeps
// it, so streams through the proxy are measured both ways: "ratio" with
// the client keeping its connection, "ratio-redial" with the client
// dialing anew for every stream anyway.
func BenchmarkProxy(b *testing.B) {
	up := startFakellama(b, "tiny")
	fleet, inFlight := benchFleet("tiny", up)
	open := benchServer(b, Config{}, fleet)
	authed := benchServer(b, Config{RequireInferenceAuth: true, InferenceKeys: []string{benchKey, "second-key"},
		ManagementKeys: []string{"mgmt-key"}}, fleet)
	bare := bareForwarder(b, up)

	run := func(b *testing.B, targets []*loadgen.Target, body []byte, conc int, stream bool) []float64 {
		b.Helper()
		rates, err := loadgen.Interleave(targets, body, conc, b.N, stream)
		if err != nil {
			b.Fatal(err)
		}
		return rates
	}
	for _, conc := range []int{4, 64} {
		b.Run(fmt.Sprintf("chat/c=%d", conc), func(b *testing.B) {
			rates := run(b, []*loadgen.Target{{Addr: up}, {Addr: open}, {Addr: authed, Key: benchKey}, {Addr: bare}},
				loadgen.Chat, conc, false)
			direct := rates[0]
			b.ReportMetric(direct, "direct-req/s")
			b.ReportMetric(rates[1], "proxy-req/s")
			b.ReportMetric(rates[2], "auth-req/s")
			b.ReportMetric(rates[1]/direct, "ratio")
			b.ReportMetric(rates[2]/direct, "ratio-auth")
			b.ReportMetric(rates[3]/direct, "ratio-bare")
		})
	}
	b.Run("sse16/c=4", func(b *testing.B) {
		rates := run(b, []*loadgen.Target{{Addr: up, Redial: true}, {Addr: open}, {Addr: authed, Key: benchKey},
			{Addr: open, Redial: true}}, loadgen.Stream, 4, true)
		direct := rates[0]
		b.ReportMetric(direct, "direct-req/s")
		b.ReportMetric(rates[1], "proxy-req/s")
		b.ReportMetric(rates[1]/direct, "ratio")
		b.ReportMetric(rates[2]/direct, "ratio-auth")
		b.ReportMetric(rates[3]/direct, "ratio-redial")
	})
	b.Run("ttfc", func(b *testing.B) { loadgen.ReportFirstChunks(b, up, open, max(b.N/10, 20)) })
	b.Run("memory", func(b *testing.B) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MiB")
		b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	})
	if n := inFlight.Load(); n != 0 {
		b.Fatalf("%d acquisitions not released", n)
	}
}

// benchFleet serves one instance at addr and costs what the daemon's
// fleet costs per request (reconcile.Loop.Acquire of a ready instance: a
// map lookup, atomic loads and a release func), not the bookkeeping of
// the test fakes. inFlight counts unreleased acquisitions.
func benchFleet(name, addr string) (Fleet, *atomic.Int64) {
	inFlight := new(atomic.Int64)
	routes := map[string]string{name: addr}
	st := sample(name, rt.PhaseRunning)
	st.Spec.APIKey = nil // fakellama runs without a key
	f := fleetOf(st)
	f.AcquireFn = func(_ context.Context, model string) (string, string, func(), error) {
		a, ok := routes[model]
		if !ok {
			return "", "", nil, reconcile.ErrNotFound
		}
		inFlight.Add(1)
		var once atomic.Bool
		return model, a, func() {
			if once.CompareAndSwap(false, true) {
				inFlight.Add(-1)
			}
		}, nil
	}
	return f, inFlight
}
