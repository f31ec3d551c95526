package runtime

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An explicit port held by another process that even answers /health:
// the start fails with a reason naming the port, and the instance never
// reports running (its probe must not reach the other process).
func TestExplicitPortInUse(t *testing.T) {
	t.Parallel()
	l := listen(t, 0)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	m := newManager(t, nil)
	cfg := testConfig("taken")
	cfg.Port = l.Addr().(*net.TCPAddr).Port
	cfg.MaxRestarts = 1
	s := m.Supervise(cfg)
	events, cancel := s.Subscribe()
	defer cancel()
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, s, PhaseFailed, 5*time.Second)
	want := "port " + strconv.Itoa(cfg.Port) + " on 127.0.0.1 is in use"
	if !strings.Contains(st.LastError, want) || st.PID != 0 {
		t.Fatalf("status = %+v, want LastError containing %q", st, want)
	}
	for {
		select {
		case ev := <-events:
			if ev.To == PhaseRunning {
				t.Fatalf("instance reported running on a port another process holds: %+v", ev)
			}
			continue
		default:
		}
		break
	}
}

// Two instances with one explicit port: the second one's start fails
// naming the first, not "another process", and the first is untouched.
func TestExplicitPortOfAnotherInstance(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	first := testConfig("first")
	first.Port = m.opts.PortMax
	fs, st := startRunning(t, m, first)
	second := testConfig("second")
	second.Port = first.Port
	second.MaxRestarts = 0
	s := m.Supervise(second)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	got := waitPhase(t, s, PhaseFailed, 5*time.Second)
	if want := "port " + strconv.Itoa(first.Port) + " is taken by instance first"; !strings.Contains(got.LastError, want) {
		t.Errorf("second: last error %q, want it to contain %q", got.LastError, want)
	}
	if now := fs.Snapshot(); now.Phase != PhaseRunning || now.PID != st.PID {
		t.Errorf("first was touched: %+v", now)
	}
}

// Turning on_demand_start off while the instance sleeps (same hash)
// starts it; an update that keeps it on-demand leaves it asleep.
func TestOnDemandTurnedOffStartsSleeping(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	cfg := testConfig("od")
	cfg.OnDemand = true
	s := m.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, s, PhaseSleeping, 5*time.Second)

	cfg.IdleTimeout = time.Hour // same hash, still on demand
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	if st := s.Snapshot(); st.Phase != PhaseSleeping || st.PID != 0 {
		t.Fatalf("on-demand update woke the instance: %+v", st)
	}

	cfg.OnDemand = false
	if err := s.Update(ctxT(t, 5*time.Second), cfg); err != nil {
		t.Fatal(err)
	}
	if st := waitPhase(t, s, PhaseRunning, 5*time.Second); st.PID == 0 {
		t.Fatalf("running without a pid: %+v", st)
	}
}

// ReapStaleExcept keeps the recorded children of names still desired
// (a broken spec file after a daemon restart); Remove of such a name
// stops the kept child, and Supervise adopts it like any record.
func TestReapStaleExceptKeepsDesired(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kept := keepRunning(t, dir, testConfig("kept"))
	gone := keepRunning(t, dir, testConfig("gone"))
	later := keepRunning(t, dir, testConfig("later"))

	m2 := newManager(t, func(o *ManagerOptions) { o.DataDir = dir })
	keep := func(name string) bool { return name == "kept" || name == "later" }
	if err := m2.ReapStaleExcept(ctxT(t, 5*time.Second), keep); err != nil {
		t.Fatal(err)
	}
	if alive(gone.PID) || !alive(kept.PID) || !alive(later.PID) {
		t.Fatalf("after ReapStaleExcept: gone alive %v, kept alive %v, later alive %v", alive(gone.PID), alive(kept.PID), alive(later.PID))
	}
	if got := m2.StaleRecords(); len(got) != 2 || got[0] != "kept" || got[1] != "later" {
		t.Fatalf("StaleRecords = %v", got)
	}

	if err := m2.Remove(ctxT(t, 5*time.Second), "kept"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the kept child to stop", func() bool { return !alive(kept.PID) })
	if _, err := os.Stat(filepath.Join(dir, "run", "kept.json")); !os.IsNotExist(err) {
		t.Fatalf("record of the removed child: %v", err)
	}

	s := m2.Supervise(testConfig("later"))
	if st := s.Snapshot(); st.PID != later.PID || !st.Adopted {
		t.Fatalf("kept child not adopted: %+v (was pid %d)", st, later.PID)
	}
	if got := m2.StaleRecords(); len(got) != 0 {
		t.Fatalf("StaleRecords = %v", got)
	}
}

// TestDataFoldersRemoved: the logs and run folders removed under a
// running daemon (a cleaner, a hand) are made again at the next start:
// a restart neither fails nor loses the record the next daemon adopts.
func TestDataFoldersRemoved(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	s, st := startRunning(t, m, testConfig("rm"))
	for _, d := range []string{m.logDir, m.runDir} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Restart(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	now := waitPhase(t, s, PhaseRunning, 10*time.Second)
	if now.PID == st.PID || now.Restarts != 0 || now.LastError != "" {
		t.Fatalf("after the restart: %+v (was pid %d)", now, st.PID)
	}
	if _, err := os.Stat(filepath.Join(m.logDir, "rm.log")); err != nil {
		t.Errorf("log file: %v", err)
	}
	if _, err := os.Stat(recordPath(m.runDir, "rm")); err != nil {
		t.Errorf("record: %v", err)
	}
}
