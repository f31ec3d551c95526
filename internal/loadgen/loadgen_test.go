package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server answers chat completions; streamed ones in three flushed chunks,
// closing the connection afterwards as llama-server does.
func server(t *testing.T, status int, served *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		served.Add(1)
		if r.URL.Path != Path || r.Method != http.MethodPost {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "failing", status)
			return
		}
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			for range 3 {
				_, _ = io.WriteString(w, "data: {}\n\n")
				w.(http.Flusher).Flush()
			}
			return
		}
		_, _ = io.WriteString(w, `{"object":"chat.completion"}`)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestInterleave(t *testing.T) {
	var a, b atomic.Int64
	targets := []*Target{{Addr: server(t, 200, &a)}, {Addr: server(t, 200, &b), Key: "k"}}
	rates, err := Interleave(targets, Chat, 3, 25, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rates) != 2 || rates[0] <= 0 || rates[1] <= 0 || a.Load() != 25 || b.Load() != 25 {
		t.Fatalf("rates %v, served %d and %d (want 25 each)", rates, a.Load(), b.Load())
	}
	targets[0].Redial = true
	if _, err := Interleave(targets, Stream, 2, 10, true); err != nil {
		t.Fatal(err)
	}
	if a.Load() != 35 || b.Load() != 35 {
		t.Fatalf("served %d and %d streams after 25 chats each, want 35", a.Load(), b.Load())
	}
	d, err := FirstChunks(targets, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0] <= 0 || d[1] <= 0 {
		t.Fatalf("first chunk times %v", d)
	}
}

func TestInterleaveReportsFailures(t *testing.T) {
	var n atomic.Int64
	_, err := Interleave([]*Target{{Addr: server(t, 500, &n)}}, Chat, 2, 6, false)
	if err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("err = %v", err)
	}
}

// TestIdleCloseIsRetried: a server that closes connections idle for 50ms
// (while the other target's slow round runs) costs no failed request.
func TestIdleCloseIsRetried(t *testing.T) {
	var n, slow atomic.Int64
	quick := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
		_, _ = io.WriteString(w, `{}`)
	}))
	quick.Config.IdleTimeout = 50 * time.Millisecond
	quick.Start()
	t.Cleanup(quick.Close)
	slowSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		slow.Add(1)
		time.Sleep(120 * time.Millisecond)
	}))
	t.Cleanup(slowSrv.Close)
	targets := []*Target{{Addr: strings.TrimPrefix(quick.URL, "http://")}, {Addr: strings.TrimPrefix(slowSrv.URL, "http://")}}
	if _, err := Interleave(targets, Chat, 2, 20, false); err != nil {
		t.Fatal(err)
	}
	if n.Load() < 20 || slow.Load() != 20 {
		t.Fatalf("served %d and %d, want 20 each (more for retries)", n.Load(), slow.Load())
	}
}

func TestSequence(t *testing.T) {
	for n := 1; n <= 7; n++ {
		seq := Sequence(n)
		want := max(n*(n-1), 1)
		if len(seq) != want {
			t.Fatalf("n=%d: %d runs, want %d", n, len(seq), want)
		}
		count := make([]int, n)
		follows := map[[2]int]int{}
		for i, v := range seq {
			if v < 0 || v >= n {
				t.Fatalf("n=%d: target %d out of range", n, v)
			}
			count[v]++
			follows[[2]int{seq[(i+len(seq)-1)%len(seq)], v}]++ // as a cycle
		}
		for a := range n {
			if count[a] != max(n-1, 1) {
				t.Errorf("n=%d: target %d runs %d times, want %d", n, a, count[a], max(n-1, 1))
			}
			for b := range n {
				if got := follows[[2]int{a, b}]; n > 1 && (a == b && got != 0 || a != b && got != 1) {
					t.Errorf("n=%d: %d runs right after %d %d times", n, b, a, got)
				}
			}
		}
	}
	if Sequence(0) != nil {
		t.Error("Sequence(0) is not nil")
	}
	if r, err := Interleave(nil, Chat, 1, 10, false); r != nil || err != nil {
		t.Errorf("Interleave without targets = %v, %v", r, err)
	}
}
