package main

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// batchWriter collects JSON log lines and writes them in batches, so that
// a busy proxy does not pay a write to stderr (a pipe to journald, as a
// rule) for every access line. A line that comes after a quiet spell of
// batchDelay is written at once, and so are lines at warn level and above
// (with everything before them); other lines wait at most batchDelay, or
// until batchSize bytes are pending. Flush writes what is pending; Close
// does too and turns batching off, so that nothing logged later (by a
// goroutine still ending) waits for a timer that may never fire: call it
// before the process exits.
type batchWriter struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	armed   bool      // a flush is scheduled
	closed  bool      // Close was called: write every line at once
	last    time.Time // of the last write to w
	timer   *time.Timer
	delay   time.Duration
	maxSize int
	err     error // the last write error, reported once per Write
}

const (
	batchDelay = 50 * time.Millisecond
	batchSize  = 64 << 10
)

// newBatchWriter batches lines for w: at most delay late, at most maxSize
// bytes pending.
func newBatchWriter(w io.Writer, delay time.Duration, maxSize int) *batchWriter {
	b := &batchWriter{w: w, delay: delay, maxSize: maxSize}
	b.timer = time.AfterFunc(time.Hour, b.timed)
	b.timer.Stop()
	return b
}

// Write queues p (one log line).
func (b *batchWriter) Write(p []byte) (int, error) {
	return b.WriteLevel(zerolog.InfoLevel, p)
}

// WriteLevel queues p, or writes it and everything pending at once when
// level is warn or above or the batch is full.
func (b *batchWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.closed || level >= zerolog.WarnLevel || len(b.buf) >= b.maxSize || !b.armed && time.Since(b.last) >= b.delay {
		if err := b.flushLocked(); err != nil {
			return len(p), err
		}
		return len(p), nil
	}
	if !b.armed {
		b.armed = true
		b.timer.Reset(b.delay)
	}
	err := b.err
	b.err = nil
	return len(p), err
}

// timed runs when a batch is due.
func (b *batchWriter) timed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.flushLocked(); err != nil {
		b.err = err
	}
}

// Flush writes everything pending.
func (b *batchWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

// Close writes everything pending; later lines are written at once.
func (b *batchWriter) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}

func (b *batchWriter) flushLocked() error {
	if b.armed {
		b.timer.Stop()
		b.armed = false
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.last = time.Now()
	if cap(b.buf) > 4*b.maxSize {
		b.buf = nil // after a burst of long lines, do not keep a big buffer
	} else {
		b.buf = b.buf[:0]
	}
	return err
}
