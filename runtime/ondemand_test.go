package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestPortTakenIsSkipped(t *testing.T) {
	t.Parallel()
	l := listen(t, 0) // another process holds the first port of the range
	held := l.Addr().(*net.TCPAddr).Port
	m := newManager(t, func(o *ManagerOptions) { o.PortMin, o.PortMax = held, min(held+20, 65535) })
	_, st := startRunning(t, m, testConfig("skip"))
	if st.Port == m.opts.PortMin || st.Restarts != 0 {
		t.Fatalf("status = %+v, want a port other than %d", st, m.opts.PortMin)
	}
}

// The port is free at the bind test but taken when the child binds it:
// the child exits at once with code 1, and the supervisor retries on
// another port without counting a crash.
func TestPortTakenAtExecRetries(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	taken := m.opts.PortMin
	listen(t, taken)
	var once sync.Once
	m.ports.free = func(host string, port int) bool {
		lie := false
		if port == taken {
			once.Do(func() { lie = true })
		}
		return lie || portFree(host, port)
	}
	events := make(chan Event, 16)
	s := m.Supervise(testConfig("race"))
	ch, cancel := s.Subscribe()
	defer cancel()
	go func() {
		for ev := range ch {
			events <- ev
		}
	}()
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, s, PhaseRunning, 5*time.Second)
	if st.Port == taken || st.Restarts != 0 || st.LastError != "" {
		t.Fatalf("status = %+v", st)
	}
	cancel()
	for ev := range events {
		if ev.To == PhaseBackoff || ev.To == PhaseFailed {
			t.Fatalf("port conflict counted as a crash: %+v", ev)
		}
		if len(events) == 0 {
			break
		}
	}
	log, err := s.Tail(0)
	if err != nil {
		t.Fatal(err)
	}
	want := "couldn't bind HTTP server socket, hostname: 127.0.0.1, port: " + strconv.Itoa(taken)
	if !strings.Contains(string(log), want) {
		t.Fatalf("log has no failed attempt on port %d:\n%s", taken, log)
	}
}

func TestIdleStopWaitsForInFlight(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("idle")
	cfg.OnDemand = true
	cfg.IdleTimeout = 100 * time.Millisecond
	s := m.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, s, PhaseSleeping, 5*time.Second)
	addr, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	st := s.Snapshot()
	if st.Phase != PhaseRunning || st.InFlight != 1 {
		t.Fatalf("after EnsureReady: %+v", st)
	}
	// Hold the request for several idle timeouts.
	time.Sleep(350 * time.Millisecond)
	if now := s.Snapshot(); now.Phase != PhaseRunning || now.PID != st.PID {
		t.Fatalf("stopped during an in-flight request: %+v", now)
	}
	if code, err := chat(addr); err != nil || code != 200 {
		t.Fatalf("chat = %d, %v", code, err)
	}
	ended := time.Now()
	release()
	release() // idempotent
	if n := s.Snapshot().InFlight; n != 0 {
		t.Fatalf("InFlight = %d after release", n)
	}
	waitPhase(t, s, PhaseSleeping, 2*time.Second)
	if el := time.Since(ended); el < 100*time.Millisecond {
		t.Fatalf("slept %s after the last request, before the idle timeout", el)
	}
	if alive(st.PID) {
		t.Fatalf("pid %d alive while sleeping", st.PID)
	}
	// And wakes again.
	_, release, err = s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	release()
}

func TestConcurrentEnsureReadyOneProcess(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("herd", "FAKELLAMA_LOAD_DELAY=100ms")
	cfg.OnDemand = true
	s := m.Supervise(cfg)
	events, cancel := s.Subscribe()
	defer cancel()
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	const n = 20
	addrs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var release func()
			addrs[i], release, errs[i] = s.EnsureReady(ctxT(t, 5*time.Second))
			if release != nil {
				defer release()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || addrs[i] != addrs[0] {
			t.Fatalf("caller %d: %q, %v (caller 0: %q)", i, addrs[i], errs[i], addrs[0])
		}
	}
	cancel()
	starts := 0
	for ev := range events {
		if ev.To == PhaseStarting {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("%d starts, want 1", starts)
	}
}

func TestEnsureReadyContextEnds(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("waiting", "FAKELLAMA_LOAD_DELAY=300ms")
	cfg.OnDemand = true
	s := m.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
		if err == nil {
			time.Sleep(50 * time.Millisecond)
			if n := s.Snapshot().InFlight; n != 1 {
				err = fmt.Errorf("InFlight = %d while one request runs", n)
			}
			release()
		}
		first <- err
	}()
	waitPhase(t, s, PhaseStarting, 5*time.Second)
	_, _, err := s.EnsureReady(ctxT(t, 50*time.Millisecond))
	if !errors.Is(err, errDeadline) {
		t.Fatalf("EnsureReady = %v, want deadline exceeded", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The abandoned waiter was never counted as in flight.
	if st := s.Snapshot(); st.Phase != PhaseRunning || st.InFlight != 0 {
		t.Fatalf("status = %+v", st)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cfg := testConfig("upd", "FAKELLAMA_PID_FILE="+pidFile, "FAKELLAMA_LOAD_DELAY=50ms")
	s, st := startRunning(t, m, cfg)

	// Same hash: applied in place, same process.
	cfg.RestartDelay = time.Second
	cfg.IdleTimeout = time.Hour
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	if now := s.Snapshot(); now.PID != st.PID || now.Phase != PhaseRunning {
		t.Fatalf("in-place update restarted: %+v", now)
	}

	// New hash with a request in flight: the old process serves it to
	// the end; a request arriving meanwhile waits for the new process.
	addr, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Hash = "h2"
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	type result struct {
		addr string
		err  error
		at   time.Time
	}
	late := make(chan result, 1)
	go func() {
		a, rel, err := s.EnsureReady(ctxT(t, 5*time.Second))
		if rel != nil {
			rel()
		}
		late <- result{a, err, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	if now := s.Snapshot(); now.PID != st.PID || now.Phase != PhaseStopping || now.InFlight < 1 {
		t.Fatalf("while draining: %+v", now)
	}
	if code, err := chat(addr); err != nil || code != 200 {
		t.Fatalf("in-flight request on the old process = %d, %v", code, err)
	}
	released := time.Now()
	release()
	r := <-late
	if r.err != nil || r.at.Before(released) {
		t.Fatalf("late EnsureReady = %+v (released at %s)", r, released)
	}
	now := s.Snapshot()
	if now.PID == st.PID || now.Hash != "h2" || now.Phase != PhaseRunning || now.Restarts != 0 {
		t.Fatalf("after update: %+v", now)
	}
	if alive(st.PID) {
		t.Fatalf("old pid %d alive", st.PID)
	}
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) == "" {
		t.Fatalf("pid file: %v", err)
	}
	_ = r.addr
}

func TestUpdateDrainBoundedByStopTimeout(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("drain")
	cfg.StopTimeout = 200 * time.Millisecond
	s, st := startRunning(t, m, cfg)
	_, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	cfg.Hash = "h2"
	begin := time.Now()
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	var now Status
	waitFor(t, 5*time.Second, "new process despite a stuck request", func() bool {
		now = s.Snapshot()
		return now.Phase == PhaseRunning && now.PID != st.PID
	})
	if el := time.Since(begin); el < 200*time.Millisecond {
		t.Fatalf("restarted after %s, before the drain bound", el)
	}
	if now.Hash != "h2" {
		t.Fatalf("status = %+v", now)
	}
}

func TestUpdateChangedBackKeepsProcess(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("back")
	s, st := startRunning(t, m, cfg)
	_, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg
	cfg2.Hash = "h2"
	if err := s.Update(ctxT(t, 5*time.Second), cfg2); err != nil {
		t.Fatal(err)
	}
	if now := s.Snapshot(); now.Phase != PhaseStopping {
		t.Fatalf("draining status = %+v", now)
	}
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	release()
	addr, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	release()
	if now := s.Snapshot(); now.Phase != PhaseRunning || now.PID != st.PID || addr != st.addr() {
		t.Fatalf("after changing back: %+v (was pid %d, addr %s; got %s)", now, st.PID, st.addr(), addr)
	}
}

// TestIdleTimeoutSwitchedOn checks that an idle timeout set on a running
// instance counts from the update, although the ends of the requests
// before it were not recorded (there was no idle timeout to read them).
func TestIdleTimeoutSwitchedOn(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("idleon")
	cfg.OnDemand = true
	s := m.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, s, PhaseSleeping, 5*time.Second)
	_, release, err := s.EnsureReady(ctxT(t, 5*time.Second)) // wakes it
	if err != nil {
		t.Fatal(err)
	}
	release()
	time.Sleep(400 * time.Millisecond)
	const idle = 300 * time.Millisecond
	cfg.IdleTimeout = idle
	updated := time.Now()
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, s, PhaseSleeping, 5*time.Second)
	if d := time.Since(updated); d < idle {
		t.Fatalf("put to sleep %v after the update, idle timeout %v", d, idle)
	}
}

// A requested restart drains like a config change: the request in flight
// is served to its end by the old process, then the new one starts; an
// Update with the same hash meanwhile does not call the restart off; a
// stuck request is cut off after StopTimeout.
func TestRestartDrainsInFlight(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("rdrain")
	cfg.StopTimeout = 3 * time.Second
	s, st := startRunning(t, m, cfg)
	addr, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Restart(ctxT(t, 10*time.Second)) }()
	waitFor(t, 5*time.Second, "the drain", func() bool { return s.Snapshot().Phase == PhaseStopping })
	cfg.IdleTimeout = time.Hour // a supervision-only change: same hash
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	if now := s.Snapshot(); now.PID != st.PID || now.Phase != PhaseStopping {
		t.Fatalf("while draining: %+v", now)
	}
	if code, err := chat(addr); err != nil || code != 200 {
		t.Fatalf("in-flight request on the old process = %d, %v", code, err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var now Status
	waitFor(t, 5*time.Second, "the new process", func() bool {
		now = s.Snapshot()
		return now.Phase == PhaseRunning && now.PID != st.PID
	})
	if alive(st.PID) {
		t.Fatalf("old pid %d alive", st.PID)
	}

	// A request that never ends does not hold the restart past StopTimeout.
	_, stuck, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck()
	begin := time.Now()
	if err := s.Restart(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el < cfg.StopTimeout || el > 3*cfg.StopTimeout {
		t.Fatalf("restart with a stuck request took %s, want about the %s stop timeout", el, cfg.StopTimeout)
	}
}

// During a restart's drain, a second Restart joins it (the requests in
// flight still finish), and a process that dies meanwhile is restarted as
// asked, not counted as a crash, and both callers get their answer.
func TestRestartDrainJoinedAndCrashed(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("rjoin")
	cfg.StopTimeout = 5 * time.Second
	s, st := startRunning(t, m, cfg)
	_, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { first <- s.Restart(ctxT(t, 10*time.Second)) }()
	waitFor(t, 5*time.Second, "the drain", func() bool { return s.Snapshot().Phase == PhaseStopping })
	go func() { second <- s.Restart(ctxT(t, 10*time.Second)) }()
	time.Sleep(200 * time.Millisecond)
	if !alive(st.PID) {
		t.Fatal("a second restart cut the drain short")
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil { // dies while draining
		t.Fatal(err)
	}
	for _, ch := range []chan error{first, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(4 * time.Second):
			t.Fatal("restart caller left waiting after the process died")
		}
	}
	var now Status
	waitFor(t, 5*time.Second, "the new process", func() bool {
		now = s.Snapshot()
		return now.Phase == PhaseRunning && now.PID != st.PID
	})
	if now.Restarts != 0 {
		t.Fatalf("the death during a requested restart counted as a crash: %+v", now)
	}
}
