package runtime

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// send delivers a request to the loop and waits for its reply.
func (s *Supervisor) send(ctx context.Context, r request) error {
	r.reply = make(chan error, 1)
	select {
	case s.reqs <- r:
	case <-s.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-s.done:
		select {
		case err := <-r.reply:
			return err
		default:
			return errClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Update sets a new config. When only non-process fields changed (same
// Hash: restart policy, timeouts, idle timeout) it applies in place. When
// the hash changed and a process runs, it is restarted: in-flight requests
// finish first (bounded by StopTimeout) and requests arriving meanwhile
// wait for the new process. A new hash also resets the restart budget and
// clears a failed state. Update returns once the change is under way.
func (s *Supervisor) Update(ctx context.Context, cfg Config) error {
	return s.send(ctx, request{kind: reqUpdate, cfg: cfg})
}

// Start makes the instance desired-running (sleeping when OnDemand) and
// clears a failed state. It returns once the start is under way.
func (s *Supervisor) Start(ctx context.Context) error {
	return s.send(ctx, request{kind: reqStart})
}

// Stop makes the instance desired-stopped and waits until the process
// group is gone (or ctx ends; the stop goes on regardless).
func (s *Supervisor) Stop(ctx context.Context) error {
	return s.send(ctx, request{kind: reqStop})
}

// Restart stops the process (if any) and starts it again, resetting the
// restart budget; the instance becomes desired-running. A running process
// first serves the requests in flight (bounded by StopTimeout), as for a
// config change, while new ones wait for the new process. It returns once
// the old process is gone and the new start is under way.
func (s *Supervisor) Restart(ctx context.Context) error {
	return s.send(ctx, request{kind: reqRestart})
}

// close ends the supervisor: it stops the child (or leaves it running
// with its record, when detach) and waits for the loop to end.
func (s *Supervisor) close(ctx context.Context, detach bool) error {
	err := s.send(ctx, request{kind: reqClose, detach: detach})
	if err == errClosed {
		err = nil
	}
	if err != nil {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EnsureReady wakes a sleeping instance and waits until it is healthy.
// On success it returns the address (host:port) to send the request to
// and a release func that must be called when the request ends: while
// any request is in flight the instance is not stopped for idleness nor
// restarted for a config change. Concurrent callers join the same start.
//
// On a running instance it costs a few atomic operations. Errors:
// ErrStopped (desired stopped), ErrFailed (past the restart budget,
// wrapped with the reason), ErrNotReady (the start it waited for failed or
// timed out, wrapped with the reason), or ctx's error. It keeps waiting
// while the instance is starting, backing off or restarting for a config
// change.
func (s *Supervisor) EnsureReady(ctx context.Context) (addr string, release func(), err error) {
	if addr, release, ok := s.TryReady(); ok {
		return addr, release, nil
	}
	w := &waiter{reply: make(chan ensureReply, 1)}
	select {
	case s.reqs <- request{kind: reqEnsure, w: w}:
	case <-s.done:
		return "", nil, errClosed
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	select {
	case r := <-w.reply:
		return s.granted(r)
	case <-s.done:
		if w.state.CompareAndSwap(0, 2) {
			return "", nil, errClosed
		}
		return s.granted(<-w.reply)
	case <-ctx.Done():
		if w.state.CompareAndSwap(0, 2) {
			return "", nil, ctx.Err()
		}
		return s.granted(<-w.reply) // answered meanwhile
	}
}

// TryReady is EnsureReady's answer for an instance that is ready now,
// without waiting or a context: ok is false when the instance is not
// ready (or stops being so this instant), and EnsureReady then knows
// what to do.
func (s *Supervisor) TryReady() (addr string, release func(), ok bool) {
	a := s.ready.Load()
	if a == nil {
		return "", nil, false
	}
	s.inflight.Add(1)
	if s.ready.Load() != a {
		s.done1() // the loop is closing the door
		return "", nil, false
	}
	return *a, s.releaser(), true
}

func (s *Supervisor) granted(r ensureReply) (string, func(), error) {
	if r.err != nil {
		return "", nil, r.err
	}
	return r.addr, s.releaser(), nil
}

// releaser returns the release func of one in-flight request; calling it
// more than once has no further effect.
func (s *Supervisor) releaser() func() {
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			if s.timesEnds.Load() {
				s.lastEnd.Store(time.Now().UnixNano())
			}
			s.done1()
		}
	}
}

// done1 ends one in-flight request and tells the loop when none is left
// and it waits for that.
func (s *Supervisor) done1() {
	if s.inflight.Add(-1) == 0 && s.wantDrain.Load() {
		select {
		case s.drained <- struct{}{}:
		default:
		}
	}
}

// Snapshot returns the current status.
func (s *Supervisor) Snapshot() Status {
	st := *s.status.Load()
	st.InFlight = int(s.inflight.Load())
	return st
}

// Name is the instance name.
func (s *Supervisor) Name() string { return s.name }

// Done is closed when the supervisor has ended (Remove or Shutdown).
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Subscribe returns phase transition events until cancel is called or the
// supervisor ends (then the channel is closed). Events are buffered; a
// subscriber that falls more than 64 events behind loses events.
func (s *Supervisor) Subscribe() (events <-chan Event, cancel func()) {
	ch := make(chan Event, 64)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subEnd {
		close(ch)
		return ch, func() {}
	}
	s.subs[ch] = struct{}{}
	return ch, func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// LogPath is the instance's current log file.
func (s *Supervisor) LogPath() string { return s.logPath }

// Tail returns the last n lines of the instance's log (n <= 0: all). It
// reads the current file from its end, not rotated backups.
func (s *Supervisor) Tail(n int) ([]byte, error) {
	if s.logPath == "" {
		return nil, fmt.Errorf("tail: invalid instance name %q", s.name)
	}
	b, err := tailFile(s.logPath, n, 0)
	if err != nil {
		return nil, fmt.Errorf("tail %s: %w", s.name, err)
	}
	return b, nil
}
