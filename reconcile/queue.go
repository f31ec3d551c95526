package reconcile

import (
	"sync"
	"time"
)

// queue is a work queue of instance names in the manner of client-go's
// workqueue: a name queued twice is processed once, a name is never handed
// to two workers at once, and a name added while it is being processed is
// processed again after Done. AddAfter defers an add (per-name backoff).
//
// All fields are guarded by mu.
type queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	items      []string            // FIFO of names ready to hand out
	dirty      map[string]struct{} // names that need a pass (queued or waiting for Done)
	processing map[string]struct{} // names handed to a worker and not yet Done
	timers     map[string]*time.Timer
	failures   map[string]int
	shutdown   bool

	baseDelay, maxDelay time.Duration
}

func newQueue() *queue {
	q := &queue{
		dirty:      map[string]struct{}{},
		processing: map[string]struct{}{},
		timers:     map[string]*time.Timer{},
		failures:   map[string]int{},
		baseDelay:  100 * time.Millisecond,
		maxDelay:   30 * time.Second,
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues name unless it is already queued.
func (q *queue) Add(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(name)
}

func (q *queue) addLocked(name string) {
	if q.shutdown {
		return
	}
	if t, ok := q.timers[name]; ok {
		t.Stop()
		delete(q.timers, name)
	}
	if _, ok := q.dirty[name]; ok {
		return
	}
	q.dirty[name] = struct{}{}
	if _, ok := q.processing[name]; ok {
		return // re-queued by Done
	}
	q.items = append(q.items, name)
	q.cond.Signal()
}

// AddAfter queues name after d, unless something queues it sooner.
func (q *queue) AddAfter(name string, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	if d <= 0 {
		q.addLocked(name)
		return
	}
	if t, ok := q.timers[name]; ok {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.timers[name] == t {
			delete(q.timers, name)
			q.addLocked(name)
		}
	})
	q.timers[name] = t
}

// AddRateLimited queues name after its per-name exponential backoff and
// returns the delay used.
func (q *queue) AddRateLimited(name string) time.Duration {
	q.mu.Lock()
	n := q.failures[name]
	q.failures[name] = n + 1
	q.mu.Unlock()
	d := q.baseDelay
	for i := 0; i < n && d < q.maxDelay; i++ {
		d *= 2
	}
	d = min(d, q.maxDelay)
	q.AddAfter(name, d)
	return d
}

// Forget resets the backoff of name (after a successful pass).
func (q *queue) Forget(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, name)
}

// Get blocks until a name is ready and marks it processing; ok is false
// once the queue is shut down.
func (q *queue) Get() (name string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return "", false
	}
	name = q.items[0]
	q.items[0] = ""
	q.items = q.items[1:]
	q.processing[name] = struct{}{}
	delete(q.dirty, name)
	return name, true
}

// Done ends the pass of name; if name was added meanwhile it is queued
// again.
func (q *queue) Done(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, name)
	if _, ok := q.dirty[name]; ok && !q.shutdown {
		q.items = append(q.items, name)
		q.cond.Signal()
	}
}

// Len is the number of names waiting to be handed out.
func (q *queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// ShutDown wakes every Get (which then returns false) and stops the
// backoff timers.
func (q *queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for n, t := range q.timers {
		t.Stop()
		delete(q.timers, n)
	}
	q.cond.Broadcast()
}
