package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadline is a context that expires at a deadline but arms no timer
// until someone asks for Done. Acquiring a ready instance returns without
// waiting, so the common request costs no timer (context.WithTimeout
// makes one, and a cancellation, every time). Call stop once the context
// is no longer used.
type lazyDeadline struct {
	deadline time.Time
	once     sync.Once
	done     chan struct{}
	timer    *time.Timer
	expired  atomic.Bool
}

// lazyDeadlineAt returns a lazyDeadline that expires at deadline.
func lazyDeadlineAt(deadline time.Time) *lazyDeadline {
	return &lazyDeadline{deadline: deadline}
}

func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// Done arms the timer on first use.
func (c *lazyDeadline) Done() <-chan struct{} {
	c.once.Do(func() {
		c.done = make(chan struct{})
		left := time.Until(c.deadline)
		if left <= 0 {
			c.expire()
			return
		}
		c.timer = time.AfterFunc(left, c.expire)
	})
	return c.done
}

func (c *lazyDeadline) expire() {
	c.expired.Store(true)
	close(c.done)
}

// Err is context.DeadlineExceeded once Done is closed, nil before.
func (c *lazyDeadline) Err() error {
	if c.expired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *lazyDeadline) Value(any) any { return nil }

// stop releases the timer, if one was armed; a Done not armed before
// is nil after: it never closes.
func (c *lazyDeadline) stop() {
	c.once.Do(func() {})
	if c.timer != nil {
		c.timer.Stop()
	}
}
