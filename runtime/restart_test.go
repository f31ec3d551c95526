package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCrashAfterRequestsRestarts(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	s, st := startRunning(t, m, testConfig("crashy", "FAKELLAMA_CRASH_AFTER_REQUESTS=1", "FAKELLAMA_EXIT_CODE=7"))
	events, cancel := s.Subscribe()
	defer cancel()
	addr, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := chat(addr); err != nil || code != 200 {
		t.Fatalf("chat = %d, %v", code, err)
	}
	release()
	var sawBackoff bool
	deadline := time.After(5 * time.Second)
	for !sawBackoff {
		select {
		case ev := <-events:
			if ev.To == PhaseBackoff {
				sawBackoff = true
				if !strings.Contains(ev.Reason, "exit code 7") {
					t.Errorf("backoff reason %q lacks the exit code", ev.Reason)
				}
			}
		case <-deadline:
			t.Fatal("no backoff after the crash")
		}
	}
	st2 := waitPhase(t, s, PhaseRunning, 5*time.Second)
	if st2.PID == st.PID || st2.Restarts != 1 || !strings.Contains(st2.LastError, "exit code 7") {
		t.Fatalf("after restart: %+v (before pid %d)", st2, st.PID)
	}
}

func TestCrashLoopFails(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("loop", "FAKELLAMA_CRASH_AFTER=10ms", "FAKELLAMA_EXIT_CODE=3")
	cfg.MaxRestarts = 2
	s := m.Supervise(cfg)
	events, cancel := s.Subscribe()
	defer cancel()
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, s, PhaseFailed, 10*time.Second)
	cancel()
	var backoffs []string
	for ev := range events {
		if ev.To == PhaseBackoff {
			backoffs = append(backoffs, ev.Reason[:strings.Index(ev.Reason, ":")])
		}
	}
	// Exponential from RestartDelay (10ms).
	if want := []string{"restart 1 in 10ms", "restart 2 in 20ms"}; !slices.Equal(backoffs, want) {
		t.Fatalf("backoffs = %q, want %q", backoffs, want)
	}
	if st.Restarts != 2 || !strings.Contains(st.LastError, "gave up after 2 restarts") || !strings.Contains(st.LastError, "exit code 3") {
		t.Fatalf("failed status = %+v", st)
	}
	if !strings.Contains(st.LastError, "last log lines") {
		t.Errorf("LastError %q has no log excerpt", st.LastError)
	}
	_, _, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "exit code 3") {
		t.Fatalf("EnsureReady on failed = %v", err)
	}
	// Stays failed: no process comes back by itself.
	time.Sleep(50 * time.Millisecond)
	if st := s.Snapshot(); st.Phase != PhaseFailed || st.PID != 0 {
		t.Fatalf("failed instance moved: %+v", st)
	}
	// A new hash clears the failure.
	cfg2 := testConfig("loop")
	cfg2.Hash = "h2"
	if err := s.Update(ctxT(t, 5*time.Second), cfg2); err != nil {
		t.Fatal(err)
	}
	st = waitPhase(t, s, PhaseRunning, 5*time.Second)
	if st.Restarts != 0 || st.Hash != "h2" {
		t.Fatalf("after update: %+v", st)
	}
}

func TestRestartClearsFailed(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("rs", "FAKELLAMA_EXIT_AT_START=1")
	cfg.AutoRestart = false
	s := m.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, s, PhaseFailed, 5*time.Second)
	events, cancel := s.Subscribe()
	defer cancel()
	if err := s.Restart(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.From != PhaseFailed || ev.To != PhaseStarting {
			t.Fatalf("event after Restart = %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Restart did not start")
	}
	waitPhase(t, s, PhaseFailed, 5*time.Second)
}

func TestExitAtStart(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("bad", "FAKELLAMA_EXIT_AT_START=2")
	cfg.AutoRestart = false
	cfg.OnDemand = true
	s := m.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, s, PhaseSleeping, 5*time.Second)
	_, _, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("EnsureReady = %v, want ErrNotReady", err)
	}
	st := s.Snapshot()
	if st.Phase != PhaseFailed {
		t.Fatalf("phase = %s, want failed", st.Phase)
	}
	for _, want := range []string{"start failed", "exit code 2", "failed to load model"} {
		if !strings.Contains(st.LastError, want) || !strings.Contains(err.Error(), want) {
			t.Errorf("LastError %q / err %q lacks %q", st.LastError, err, want)
		}
	}
}

func TestStartupTimeout(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cfg := testConfig("slow", "FAKELLAMA_LOAD_DELAY=1m", "FAKELLAMA_PID_FILE="+pidFile)
	cfg.StartupTimeout = 200 * time.Millisecond
	cfg.AutoRestart = false
	s := m.Supervise(cfg)
	begin := time.Now()
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	pid := readPidFile(t, pidFile)
	st := waitPhase(t, s, PhaseFailed, 5*time.Second)
	if el := time.Since(begin); el < 200*time.Millisecond {
		t.Fatalf("failed after %s, before the startup timeout", el)
	}
	if !strings.Contains(st.LastError, "startup timeout") {
		t.Fatalf("LastError = %q", st.LastError)
	}
	if alive(pid) {
		t.Fatalf("pid %d alive after a startup timeout", pid)
	}
}

func TestStopIgnoringSIGTERM(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("stubborn", "FAKELLAMA_IGNORE_SIGTERM=1")
	cfg.StopTimeout = 300 * time.Millisecond
	s, st := startRunning(t, m, cfg)
	begin := time.Now()
	if err := s.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	el := time.Since(begin)
	if el < 300*time.Millisecond || el > 2*time.Second {
		t.Fatalf("Stop took %s, want about the 300ms stop timeout", el)
	}
	if alive(st.PID) {
		t.Fatalf("pid %d alive after Stop", st.PID)
	}
	if !portIsFree(st.Port) {
		t.Fatalf("port %d busy after Stop", st.Port)
	}
}

// KillAtOnce (a spec's stop_timeout: 0) sends SIGKILL right after
// SIGTERM: a child that ignores SIGTERM is gone well before the default
// stop timeout.
func TestStopKillAtOnce(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("no-grace", "FAKELLAMA_IGNORE_SIGTERM=1")
	cfg.StopTimeout = KillAtOnce
	s, st := startRunning(t, m, cfg)
	begin := time.Now()
	if err := s.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el > DefaultStopTimeout/2 {
		t.Fatalf("Stop took %s, want SIGKILL at once, not after the %s default", el, DefaultStopTimeout)
	}
	if alive(st.PID) {
		t.Fatalf("pid %d alive after Stop", st.PID)
	}
}

func TestGrandchildGoesWithTheGroup(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stop", "crash"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			m := newManager(t, nil)
			gcFile := filepath.Join(t.TempDir(), "gc.pid")
			env := []string{"FAKELLAMA_GRANDCHILD=1", "FAKELLAMA_GRANDCHILD_PIDFILE=" + gcFile}
			if how == "crash" {
				env = append(env, "FAKELLAMA_CRASH_AFTER_REQUESTS=1")
			}
			cfg := testConfig("gc-"+how, env...)
			cfg.AutoRestart = false
			s, st := startRunning(t, m, cfg)
			gc := readPidFile(t, gcFile)
			if !alive(gc) {
				t.Fatalf("grandchild %d not running", gc)
			}
			switch how {
			case "stop":
				if err := s.Stop(ctxT(t, 5*time.Second)); err != nil {
					t.Fatal(err)
				}
			case "crash":
				if _, err := chat(st.addr()); err != nil {
					t.Fatal(err)
				}
				waitPhase(t, s, PhaseFailed, 5*time.Second)
			}
			// Gone as soon as the exit is reported, not eventually.
			if alive(gc) {
				t.Fatalf("grandchild %d alive", gc)
			}
			if !portIsFree(st.Port) {
				t.Fatalf("port %d busy", st.Port)
			}
			if alive(st.PID) {
				t.Fatalf("child %d alive", st.PID)
			}
		})
	}
}

func TestLongLogLine(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	const n = 1 << 20
	s, st := startRunning(t, m, testConfig("chatty", "FAKELLAMA_LONG_LINE=1048576", "FAKELLAMA_LONG_LINE_EACH=1"))
	for i := 0; i < 3; i++ {
		if code, err := chat(st.addr()); err != nil || code != 200 {
			t.Fatalf("chat %d = %d, %v", i, code, err)
		}
	}
	if now := s.Snapshot(); now.Phase != PhaseRunning || now.PID != st.PID {
		t.Fatalf("child did not keep serving: %+v", now)
	}
	out, err := s.Tail(3)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if len(line) == n-1 && strings.HasPrefix(line, "srv  log_server_r: request body: xxx") {
			found = true
		}
	}
	if !found {
		t.Fatalf("Tail(3) (%d bytes) has no %d-byte line", len(out), n)
	}
	if fi, err := os.Stat(s.LogPath()); err != nil || fi.Size() < 4*n {
		t.Fatalf("log file: %v %v", fi, err)
	}
}

// TestHungChildRestarts: a running child that stops answering (here
// SIGSTOP: alive, its port still accepting connections, nothing served)
// is taken for hung after LivenessFailures probes in a row, killed (it
// cannot act on SIGTERM, so SIGKILL after its stop timeout) and restarted
// as after a crash; its status says why. A healthy child is probed
// meanwhile and left alone.
func TestHungChildRestarts(t *testing.T) {
	t.Parallel()
	m := newManager(t, func(o *ManagerOptions) {
		o.LivenessInterval = 50 * time.Millisecond
		o.LivenessTimeout = 500 * time.Millisecond
		o.LivenessFailures = 3
	})
	cfg := testConfig("hangs")
	cfg.StopTimeout = 200 * time.Millisecond
	s, st := startRunning(t, m, cfg)
	healthy, hst := startRunning(t, m, testConfig("fine"))

	time.Sleep(300 * time.Millisecond) // several probes, all answered
	if now := s.Snapshot(); now.Phase != PhaseRunning || now.PID != st.PID || now.Restarts != 0 {
		t.Fatalf("healthy child not left alone: %+v", now)
	}
	if err := unix.Kill(st.PID, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer unix.Kill(st.PID, unix.SIGCONT) // in case the test fails before the kill
	waitFor(t, 10*time.Second, "a new child after the hang", func() bool {
		now := s.Snapshot()
		return now.Phase == PhaseRunning && now.PID != st.PID
	})
	now := s.Snapshot()
	if now.Restarts != 1 || !strings.Contains(now.LastError, "hung: /health did not answer 200 to 3 probes in a row") {
		t.Errorf("after the hang: restarts %d, last error %q", now.Restarts, now.LastError)
	}
	if alive(st.PID) {
		t.Errorf("hung child pid %d still alive", st.PID)
	}
	if code, err := chat(now.addr()); err != nil || code != 200 {
		t.Errorf("chat with the new child = %d, %v", code, err)
	}
	if h := healthy.Snapshot(); h.PID != hst.PID || h.Restarts != 0 || h.Phase != PhaseRunning {
		t.Errorf("the other instance was touched: %+v", h)
	}
}
