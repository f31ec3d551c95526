package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// lockedBuf is a goroutine-safe destination that counts writes.
type lockedBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuf) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestBatchWriter(t *testing.T) {
	dst := &lockedBuf{}
	bw := newBatchWriter(dst, 500*time.Millisecond, 16)

	// A line after a quiet spell goes out at once.
	_, _ = bw.WriteLevel(zerolog.InfoLevel, []byte("first\n"))
	if out, n := dst.snapshot(); out != "first\n" || n != 1 {
		t.Fatalf("first line: %q in %d writes", out, n)
	}
	// Lines right after it wait for the batch.
	_, _ = bw.WriteLevel(zerolog.InfoLevel, []byte("second\n"))
	_, _ = bw.WriteLevel(zerolog.DebugLevel, []byte("third\n"))
	if out, _ := dst.snapshot(); out != "first\n" {
		t.Fatalf("batched lines written early: %q", out)
	}
	// A warning takes everything pending with it, in order, in one write.
	_, _ = bw.WriteLevel(zerolog.WarnLevel, []byte("warn\n"))
	if out, n := dst.snapshot(); out != "first\nsecond\nthird\nwarn\n" || n != 2 {
		t.Fatalf("after warn: %q in %d writes", out, n)
	}
	// A pending batch goes out by itself within the delay.
	_, _ = bw.Write([]byte("later\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, _ := dst.snapshot(); strings.HasSuffix(out, "warn\nlater\n") {
			break
		}
		if time.Now().After(deadline) {
			out, _ := dst.snapshot()
			t.Fatalf("batch not written by its timer: %q", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A full batch (16 bytes here) goes out at once.
	_, _ = bw.Write([]byte("0123456789\n"))
	_, _ = bw.Write([]byte("0123456789\n"))
	if out, _ := dst.snapshot(); !strings.HasSuffix(out, "later\n0123456789\n0123456789\n") {
		t.Fatalf("full batch not written: %q", out)
	}
	// Flush writes what is pending.
	_, _ = bw.Write([]byte("x\n"))
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if out, _ := dst.snapshot(); !strings.HasSuffix(out, "0123456789\nx\n") {
		t.Fatalf("after Flush: %q", out)
	}
	// After Close every line goes out at once, even in a burst.
	_, _ = bw.Write([]byte("y\n"))
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = bw.Write([]byte("after\n"))
	_, _ = bw.Write([]byte("close\n"))
	if out, _ := dst.snapshot(); !strings.HasSuffix(out, "x\ny\nafter\nclose\n") {
		t.Fatalf("after Close: %q", out)
	}
}

// TestBatchWriterConcurrent checks that concurrent loggers lose no line
// and never interleave two, and that a burst takes few writes.
func TestBatchWriterConcurrent(t *testing.T) {
	dst := &lockedBuf{}
	bw := newBatchWriter(dst, batchDelay, batchSize)
	log := zerolog.New(bw)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				log.Info().Int("w", w).Int("i", i).Msg("access")
			}
		})
	}
	wg.Wait()
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	out, writes := dst.snapshot()
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(l, `{"level":"info","w":`) || !strings.HasSuffix(l, `"message":"access"}`) {
			t.Fatalf("mangled line %q", l)
		}
		seen[l] = true
	}
	for w := range writers {
		for i := range lines {
			if l := fmt.Sprintf(`{"level":"info","w":%d,"i":%d,"message":"access"}`, w, i); !seen[l] {
				t.Fatalf("line lost: %s", l)
			}
		}
	}
	if writes > writers*lines/10 {
		t.Errorf("%d lines took %d writes", writers*lines, writes)
	}
}

// TestLoggerLines checks the daemon's JSON log lines: level, message and
// a current RFC 3339 time on every line, written in order once flushed.
func TestLoggerLines(t *testing.T) {
	dst := &lockedBuf{}
	log, _, flush := newLogger(dst, "info", "json")
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		log.Info().Int("i", i).Msg("line")
	}
	log.Debug().Msg("hidden")
	flush()
	after := time.Now().Add(time.Second)
	out, _ := dst.snapshot()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), out)
	}
	for i, l := range lines {
		var rec struct {
			Level, Message, Time string
			I                    int
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		ts, err := time.Parse(time.RFC3339, rec.Time)
		if err != nil || ts.Before(before.Truncate(time.Second)) || ts.After(after) {
			t.Fatalf("line %q: time %q (%v), want about now", l, rec.Time, err)
		}
		if rec.Level != "info" || rec.Message != "line" || rec.I != i {
			t.Fatalf("line %d: %q", i, l)
		}
	}
}
