package reconcile

import (
	"testing"
	"time"
)

func TestQueueMergesDuplicates(t *testing.T) {
	q := newQueue()
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if n := q.Len(); n != 2 {
		t.Fatalf("len = %d, want 2", n)
	}
	for _, want := range []string{"a", "b"} {
		got, ok := q.Get()
		if !ok || got != want {
			t.Fatalf("Get = %q %v, want %q", got, ok, want)
		}
		q.Done(got)
	}
}

func TestQueueReaddDuringPassRunsAfter(t *testing.T) {
	q := newQueue()
	defer q.ShutDown()
	q.Add("a")
	name, _ := q.Get()
	q.Add("a") // arrives mid-pass
	q.Add("a")
	if n := q.Len(); n != 0 {
		t.Fatalf("a name being processed was handed out again: len = %d", n)
	}
	q.Done(name)
	if n := q.Len(); n != 1 {
		t.Fatalf("after Done len = %d, want 1", n)
	}
	got, _ := q.Get()
	q.Done(got)
	if q.Len() != 0 {
		t.Fatal("queue not empty")
	}
}

func TestQueueBackoffGrowsAndResets(t *testing.T) {
	q := newQueue()
	defer q.ShutDown()
	q.baseDelay, q.maxDelay = time.Millisecond, 4*time.Millisecond
	var got []time.Duration
	for range 5 {
		got = append(got, q.AddRateLimited("a"))
	}
	want := []time.Duration{1, 2, 4, 4, 4}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays = %v, want %v ms", got, want)
		}
	}
	q.Forget("a")
	if d := q.AddRateLimited("a"); d != time.Millisecond {
		t.Fatalf("after Forget delay = %v, want 1ms", d)
	}
	waitFor(t, "the delayed add", func() bool { return q.Len() == 1 })
}

func TestQueueShutdownWakesGet(t *testing.T) {
	q := newQueue()
	done := make(chan bool)
	go func() {
		_, ok := q.Get()
		done <- ok
	}()
	q.AddAfter("later", time.Hour)
	q.ShutDown()
	if ok := <-done; ok {
		t.Fatal("Get returned an item after shutdown")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.timers) != 0 {
		t.Fatal("backoff timers survive shutdown")
	}
}
