package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLazyDeadline(t *testing.T) {
	t.Run("expires once watched", func(t *testing.T) {
		c := lazyDeadlineAt(time.Now().Add(20 * time.Millisecond))
		defer c.stop()
		if d, ok := c.Deadline(); !ok || time.Until(d) > 20*time.Millisecond {
			t.Fatalf("deadline %v %v", d, ok)
		}
		if c.Err() != nil {
			t.Fatalf("err %v before the deadline", c.Err())
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after the deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("err %v", c.Err())
		}
	})
	t.Run("already past", func(t *testing.T) {
		c := lazyDeadlineAt(time.Now().Add(-time.Second))
		<-c.Done()
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("err %v", c.Err())
		}
	})
	t.Run("derived context", func(t *testing.T) {
		c := lazyDeadlineAt(time.Now().Add(10 * time.Millisecond))
		defer c.stop()
		child, cancel := context.WithCancel(c)
		defer cancel()
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("child not cancelled at the parent's deadline")
		}
		if !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Fatalf("child err %v", child.Err())
		}
	})
	t.Run("stopped", func(t *testing.T) {
		c := lazyDeadlineAt(time.Now().Add(10 * time.Millisecond))
		c.stop()
		select {
		case <-c.Done():
			t.Fatal("Done closed after stop")
		case <-time.After(30 * time.Millisecond):
		}
		if c.Err() != nil {
			t.Fatalf("err %v after stop", c.Err())
		}
	})
}
