// Command bareproxy is the simplest fasthttp reverse proxy: every request
// is sent as it is to one upstream and its answer returned as it is, with
// no routing, auth, header hygiene, request ids, logging or stream
// handling. The daemon benchmark (e2e) runs it beside llamactl as the
// reference for what forwarding alone costs on the machine.
//
//	bareproxy -upstream 127.0.0.1:8080
//
// It listens on a free loopback port, prints the address on stdout and
// serves until it gets SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	upstream := flag.String("upstream", "", "host:port to forward to")
	flag.Parse()
	if *upstream == "" {
		fmt.Fprintln(os.Stderr, "bareproxy: -upstream is required")
		os.Exit(2)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	// Idle connections are dropped before llama-server's keep-alive
	// timeout (5s) would close them under a request.
	c := &fasthttp.HostClient{Addr: *upstream, MaxIdleConnDuration: 4 * time.Second,
		Dial: func(a string) (net.Conn, error) { return dialer.Dial("tcp", a) }}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if err := c.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		_ = srv.Shutdown()
	}()
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}
