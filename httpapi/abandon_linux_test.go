package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A client that leaves while its request waits for the instance (woken on
// demand) does not get its request sent: the model would generate for
// nobody. The wait is released and logged.
func TestAbandonedWhileWaking(t *testing.T) {
	echo, last := echoUpstream(t)
	r := &routes{addrs: map[string]string{"sleepy": echo}}
	f := proxyFleet(r)
	f.AcquireFn = func(ctx context.Context, model string) (string, string, func(), error) {
		time.Sleep(time.Second) // waking, long after the client left
		return r.acquire(ctx, model)
	}
	var logs syncBuffer
	log := zerolog.New(&logs)
	ts := newTestServer(t, Config{Logger: &log}, f, ServerInfo{})
	for _, path := range []string{"/v1/chat/completions", "/api/v1/instances/sleepy/proxy/completion"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		body := `{"model":"sleepy"}`
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
		time.Sleep(50 * time.Millisecond)
		conn.Close() // gone before the instance is ready
	}
	waitFor(t, "both waits released", func() bool {
		return strings.Count(logs.String(), `"status":499`) == 2 && r.inFlight.Load() == 0
	})
	if got := last(); got.Method != "" {
		t.Fatalf("an abandoned request reached the instance: %+v", got)
	}
	// A client that stays is served after the wait.
	resp, out := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"sleepy"}`), "Content-Type", "application/json")
	expect(t, resp, out, 200)
}

// With no wait for the instance the client is not looked at: one that
// half-closed its side after the request still gets its answer.
func TestHalfCloseWithoutWait(t *testing.T) {
	echo, _ := echoUpstream(t)
	r := &routes{addrs: map[string]string{"echo": echo}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})
	for _, path := range []string{"/v1/chat/completions", "/api/v1/instances/echo/proxy/completion"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		body := `{"model":"echo"}`
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
		_ = conn.(*net.TCPConn).CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Errorf("%s after a half-close: %q, %v", path, line, err)
		}
	}
}
