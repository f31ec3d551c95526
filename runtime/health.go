package runtime

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// probeHealth sends one GET /health to addr and reports whether it
// answered 200. It speaks minimal HTTP/1.1 over a fresh connection so no
// pooled connection or goroutine outlives it.
func probeHealth(ctx context.Context, addr string, timeout time.Duration) (bool, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return false, err
	}
	line, err := bufio.NewReaderSize(conn, 256).ReadString('\n')
	if err != nil {
		return false, err
	}
	// "HTTP/1.1 200 OK"
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return false, fmt.Errorf("probe %s: bad status line %q", addr, line)
	}
	return f[1] == "200", nil
}

// Poll schedule of waitHealthy: every healthFirst during the first
// healthFast (a probe of an unbound port costs one refused connect), then
// backing off by half again each time up to healthMax.
const (
	healthFirst = 4 * time.Millisecond
	healthFast  = 200 * time.Millisecond
	healthMax   = time.Second
)

// waitHealthy polls addr until /health answers 200 or ctx ends.
func waitHealthy(ctx context.Context, addr string) error {
	delay := healthFirst
	fastUntil := time.Now().Add(healthFast)
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if ok, _ := probeHealth(ctx, addr, time.Second); ok {
			return nil
		}
		t.Reset(delay)
		if time.Now().Before(fastUntil) {
			continue
		}
		delay = delay * 3 / 2
		if delay > healthMax {
			delay = healthMax
		}
	}
}
