package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"llamactl/internal/syncbuf"
)

// keepRunning starts cfg under a KeepOnShutdown manager on dir and shuts
// the manager down, leaving the child running with its record.
func keepRunning(t *testing.T, dir string, cfg Config) Status {
	t.Helper()
	base := nextPortBlock()
	m1, err := NewManager(ManagerOptions{DataDir: dir, PortMin: base, PortMax: base + 39, KeepOnShutdown: true})
	if err != nil {
		t.Fatal(err)
	}
	s := m1.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, s, PhaseRunning, 5*time.Second)
	if err := m1.Shutdown(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !alive(st.PID) {
		t.Fatalf("child %d died with KeepOnShutdown", st.PID)
	}
	if _, err := os.Stat(filepath.Join(dir, "run", cfg.Name+".json")); err != nil {
		t.Fatalf("record gone with KeepOnShutdown: %v", err)
	}
	return st
}

func TestAdoptAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig("adopt")
	st := keepRunning(t, dir, cfg)
	// The child keeps serving while no daemon runs.
	if code, err := chat(st.addr()); err != nil || code != 200 {
		t.Fatalf("chat without a daemon = %d, %v", code, err)
	}

	m2 := newManager(t, func(o *ManagerOptions) { o.DataDir = dir })
	if got := m2.StaleRecords(); len(got) != 1 || got[0] != "adopt" {
		t.Fatalf("StaleRecords = %v", got)
	}
	s := m2.Supervise(cfg)
	now := s.Snapshot()
	if now.Phase != PhaseRunning || !now.Adopted || now.PID != st.PID || now.Port != st.Port || now.Restarts != 0 {
		t.Fatalf("adopted status = %+v (was %+v)", now, st)
	}
	addr, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil || addr != st.addr() {
		t.Fatalf("EnsureReady = %q, %v", addr, err)
	}
	release()
	// Its death is a crash: restarted by policy.
	if err := killPID(st.PID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "restart of the adopted child", func() bool {
		now = s.Snapshot()
		return now.Phase == PhaseRunning && now.PID != st.PID
	})
	if now.Restarts != 1 || now.Adopted {
		t.Fatalf("after the adopted child died: %+v", now)
	}
}

func TestAdoptWithOtherHashRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig("rehash")
	st := keepRunning(t, dir, cfg)
	m2 := newManager(t, func(o *ManagerOptions) { o.DataDir = dir })
	cfg.Hash = "h2"
	s := m2.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	now := waitPhase(t, s, PhaseRunning, 5*time.Second)
	if now.PID == st.PID || now.Adopted || now.Hash != "h2" {
		t.Fatalf("status = %+v (old pid %d)", now, st.PID)
	}
	waitFor(t, 2*time.Second, "old child gone", func() bool { return !alive(st.PID) })
}

func TestReapStale(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := keepRunning(t, dir, testConfig("orphan"))

	// A record whose pid now belongs to an unrelated process.
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	pi, err := readProc(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(filepath.Join(dir, "run"), record{
		Name: "reused", PID: sleep.Process.Pid, PGID: sleep.Process.Pid, Port: 1,
		StartTime: pi.StartTime + 1, Cmdline: pi.Cmdline, Hash: "h1",
	}); err != nil {
		t.Fatal(err)
	}

	var logs syncbuf.Buffer
	log := zerolog.New(&logs)
	m2 := newManager(t, func(o *ManagerOptions) { o.DataDir = dir; o.Logger = &log })
	if err := m2.ReapStale(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if alive(st.PID) {
		t.Fatalf("stale child %d alive after ReapStale", st.PID)
	}
	if l := logs.String(); !strings.Contains(l, `"instance":"orphan"`) || !strings.Contains(l, "no longer desired") || strings.Contains(l, `"instance":"reused"`) {
		t.Errorf("reaping logs:\n%s", l)
	}
	if !portIsFree(st.Port) {
		t.Fatalf("port %d busy after ReapStale", st.Port)
	}
	if !alive(sleep.Process.Pid) {
		t.Fatal("ReapStale killed an unrelated process")
	}
	for _, name := range []string{"orphan", "reused"} {
		if _, err := os.Stat(filepath.Join(dir, "run", name+".json")); !os.IsNotExist(err) {
			t.Errorf("record %s after ReapStale: %v", name, err)
		}
	}
	if got := m2.StaleRecords(); len(got) != 0 {
		t.Fatalf("StaleRecords = %v", got)
	}
}

func TestSuperviseDropsForeignRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	pi, err := readProc(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(filepath.Join(dir, "run"), record{
		Name: "x", PID: sleep.Process.Pid, PGID: sleep.Process.Pid, Port: 1,
		StartTime: pi.StartTime, Cmdline: []string{"llama-server", "--port", "1"}, Hash: "h1",
	}); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, func(o *ManagerOptions) { o.DataDir = dir })
	s := m.Supervise(testConfig("x"))
	if st := s.Snapshot(); st.Phase != PhaseStopped || st.Adopted {
		t.Fatalf("status = %+v", st)
	}
	if !alive(sleep.Process.Pid) {
		t.Fatal("Supervise killed an unrelated process")
	}
}

// A recorded child still loading its model is adopted as starting and
// becomes running without a restart.
func TestAdoptWhileLoading(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig("loading", "FAKELLAMA_LOAD_DELAY=700ms")
	m1 := newManager(t, func(o *ManagerOptions) { o.DataDir = dir; o.KeepOnShutdown = true })
	s1 := m1.Supervise(cfg)
	if err := s1.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	var pid int
	waitFor(t, 2*time.Second, "recorded child", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "run", "loading.json"))
		pid = s1.Snapshot().PID
		return err == nil && len(b) > 0 && pid != 0
	})
	if err := m1.Shutdown(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	m2 := newManager(t, func(o *ManagerOptions) { o.DataDir = dir })
	s := m2.Supervise(cfg)
	st := s.Snapshot()
	if st.Phase != PhaseStarting || !st.Adopted || st.PID != pid {
		t.Fatalf("adopted while loading: %+v (pid was %d)", st, pid)
	}
	st = waitPhase(t, s, PhaseRunning, 5*time.Second)
	if st.PID != pid || !st.Adopted || st.Restarts != 0 {
		t.Fatalf("after loading: %+v (pid was %d)", st, pid)
	}
}
