package httpapi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// deadlineConn records the deadlines set on it.
type deadlineConn struct {
	net.Conn
	reads, writes []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.reads = append(c.reads, t)
	return nil
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.writes = append(c.writes, t)
	return nil
}

func TestCoarseConn(t *testing.T) {
	const slack = 100 * time.Millisecond
	raw := &deadlineConn{}
	c := &coarseConn{Conn: raw, slack: int64(slack)}
	base := time.Unix(1_800_000_000, 0)
	inForce := func() time.Time { return raw.reads[len(raw.reads)-1] }
	step := func(at time.Time, wantSet bool) {
		t.Helper()
		n := len(raw.reads)
		if err := c.SetReadDeadline(at); err != nil {
			t.Fatal(err)
		}
		if set := len(raw.reads) > n; set != wantSet {
			t.Fatalf("deadline %v: set=%v, want %v (in force %v)", at.Sub(base), set, wantSet, inForce().Sub(base))
		}
		got := inForce()
		if at.IsZero() != got.IsZero() || !at.IsZero() && (got.Before(at) || got.Sub(at) > slack) {
			t.Fatalf("asked for %v, in force %v", at.Sub(base), got.Sub(base))
		}
	}
	step(base, true)                                 // first: set, slack later
	step(base.Add(40*time.Millisecond), false)       // fits
	step(base.Add(100*time.Millisecond), false)      // still fits, at the edge
	step(base.Add(101*time.Millisecond), true)       // past it: set anew
	step(base.Add(50*time.Millisecond), true)        // in force is more than slack later: set
	step(base.Add(10*time.Millisecond), true)        // earlier than in force: set
	step(time.Time{}, true)                          // none
	step(time.Time{}, false)                         // none again
	step(base.Add(time.Second), true)                // from none: set
	c.forget()                                       // set directly meanwhile
	step(base.Add(time.Second), true)                // so set again
	if err := c.SetWriteDeadline(base); err != nil { // writes are kept apart
		t.Fatal(err)
	}
	if err := c.SetWriteDeadline(base.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if len(raw.writes) != 1 || !raw.writes[0].Equal(base.Add(slack)) {
		t.Fatalf("write deadlines %v", raw.writes)
	}
}

// coarseServer serves the API with short timeouts on coarse deadlines.
func coarseServer(t *testing.T, timeout time.Duration) string {
	t.Helper()
	echo, _ := echoUpstream(t)
	cfg := Config{ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout}
	if coarseSlack(cfg.withDefaults()) == 0 {
		t.Fatalf("no coarse deadlines with %v timeouts", timeout)
	}
	ts := newTestServer(t, cfg, proxyFleet(&routes{addrs: map[string]string{"echo": echo}}), ServerInfo{})
	return strings.TrimPrefix(ts.base, "http://")
}

const chatRequest = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
	"Content-Length: 16\r\n\r\n{\"model\":\"echo\"}"

// TestCoarseTimeouts checks the idle and read timeouts on real sockets:
// they fire, not much later than set, and a connection kept busy for many
// times the timeout stays open.
func TestCoarseTimeouts(t *testing.T) {
	const timeout = 400 * time.Millisecond
	addr := coarseServer(t, timeout)

	t.Run("busy connection stays", func(t *testing.T) {
		c, br := dialChat(t, addr)
		for range 25 { // 25 x 60ms: more than three timeouts
			chatOn(t, c, br)
			time.Sleep(60 * time.Millisecond)
		}
	})

	t.Run("idle connection closed", func(t *testing.T) {
		c, br := dialChat(t, addr)
		chatOn(t, c, br)
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection: %v, want EOF", err)
		}
		if d := time.Since(start); d < timeout-50*time.Millisecond || d > 5*timeout {
			t.Fatalf("idle connection closed after %v, timeout %v", d, timeout)
		}
	})

	t.Run("slow request gets 408", func(t *testing.T) {
		start := time.Now()
		// Headers begun and never ended.
		if status := rawStatus(t, addr, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"); status != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408", status)
		}
		if d := time.Since(start); d < timeout-50*time.Millisecond || d > 5*timeout {
			t.Fatalf("408 after %v, timeout %v", d, timeout)
		}
	})
}

// dialChat opens a connection to addr, closed when t ends.
func dialChat(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// chatOn sends chatRequest on c and wants a 200, read whole.
func chatOn(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	if _, err := io.WriteString(c, chatRequest); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat: %s", resp.Status)
	}
}
