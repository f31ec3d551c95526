package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"llamactl/internal/syncbuf"
)

func TestEnvDirAndLogger(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "env.txt")
	script := filepath.Join(t.TempDir(), "wrapper.sh")
	body := "#!/bin/sh\necho \"$FROM_DAEMON $FROM_SPEC $(pwd)\" > " + out + "\nexec " + fakellama + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	lg := zerolog.New(&logBuf)
	var evMu sync.Mutex
	var seen []Event
	m := newManager(t, func(o *ManagerOptions) {
		o.Env = append(os.Environ(), "FROM_DAEMON=d", "FROM_SPEC=overridden")
		o.Logger = &lg
		o.OnEvent = func(ev Event) { evMu.Lock(); seen = append(seen, ev); evMu.Unlock() }
	})
	cfg := testConfig("wrapped", "FROM_SPEC=s")
	cfg.Binary = script
	s, _ := startRunning(t, m, cfg)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), "d s "+m.opts.DataDir; got != want {
		t.Fatalf("child saw %q, want %q", got, want)
	}
	if err := s.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	evMu.Lock()
	n := len(seen)
	evMu.Unlock()
	if n != 4 {
		t.Fatalf("OnEvent saw %d events, want 4", n)
	}
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("log has %d lines, want one per transition:\n%s", len(lines), logBuf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, `"instance":"wrapped"`) || !strings.Contains(l, `"to":`) {
			t.Fatalf("log line %s lacks instance or phase", l)
		}
	}
}

type syncBuffer = syncbuf.Buffer

func TestLiveLogRotation(t *testing.T) {
	t.Parallel()
	m := newManager(t, func(o *ManagerOptions) {
		o.LogMaxBytes = 64 << 10
		o.LogBackups = 2
		o.LogCheckInterval = 10 * time.Millisecond
	})
	s, st := startRunning(t, m, testConfig("rot", "FAKELLAMA_LONG_LINE=100000", "FAKELLAMA_LONG_LINE_EACH=1"))
	waitFor(t, 2*time.Second, "first rotation", func() bool {
		_, err := os.Stat(s.LogPath() + ".1")
		return err == nil
	})
	for range 3 {
		if code, err := chat(st.addr()); err != nil || code != 200 {
			t.Fatalf("chat = %d, %v", code, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	waitFor(t, 2*time.Second, "second backup", func() bool {
		_, err := os.Stat(s.LogPath() + ".2")
		return err == nil
	})
	if _, err := os.Stat(s.LogPath() + ".3"); !os.IsNotExist(err) {
		t.Fatalf("backup beyond LogBackups: %v", err)
	}
	if now := s.Snapshot(); now.PID != st.PID || now.Phase != PhaseRunning {
		t.Fatalf("rotation disturbed the child: %+v", now)
	}
	// The child keeps writing into the rotated (truncated) file, at its
	// start (O_APPEND), not at its old offset behind a hole of zeros.
	waitFor(t, 2*time.Second, "new lines after rotation", func() bool {
		if code, err := chat(st.addr()); err != nil || code != 200 {
			t.Fatalf("chat = %d, %v", code, err)
		}
		b, _ := os.ReadFile(s.LogPath())
		return len(b) > 0 && b[0] != 0 && bytes.Contains(b, []byte("done request"))
	})
}

func TestRestartCountResetsWhenStable(t *testing.T) {
	t.Parallel()
	m := newManager(t, func(o *ManagerOptions) { o.StableAfter = 150 * time.Millisecond })
	s, st := startRunning(t, m, testConfig("stable", "FAKELLAMA_CRASH_AFTER_REQUESTS=1"))
	if _, err := chat(st.addr()); err != nil {
		t.Fatal(err)
	}
	var now Status
	waitFor(t, 5*time.Second, "restart", func() bool {
		now = s.Snapshot()
		return now.Phase == PhaseRunning && now.PID != st.PID
	})
	if now.Restarts != 1 {
		t.Fatalf("Restarts = %d after one crash", now.Restarts)
	}
	waitFor(t, 2*time.Second, "restart count reset", func() bool { return s.Snapshot().Restarts == 0 })
	if el := time.Since(now.Since); el < 150*time.Millisecond {
		t.Fatalf("reset after %s of health, before StableAfter", el)
	}
}

func TestRemoveAndShutdown(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	a, sa := startRunning(t, m, testConfig("a"))
	_, sb := startRunning(t, m, testConfig("b"))
	if got := m.Supervisors(); len(got) != 2 || got[0].Name() != "a" || got[1].Name() != "b" {
		t.Fatalf("Supervisors = %v", got)
	}
	if again := m.Supervise(testConfig("a")); again != a {
		t.Fatal("Supervise of a known name made a new supervisor")
	}
	if err := m.Remove(ctxT(t, 5*time.Second), "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get("a"); ok || alive(sa.PID) {
		t.Fatalf("after Remove: known %v, alive %v", ok, alive(sa.PID))
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("removed supervisor still running")
	}
	if err := a.Start(ctxT(t, 5*time.Second)); err == nil {
		t.Fatal("Start on a removed supervisor succeeded")
	}
	if err := m.Remove(ctxT(t, 5*time.Second), "nope"); err != nil {
		t.Fatalf("Remove of an unknown name: %v", err)
	}
	if err := m.Shutdown(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if alive(sb.PID) {
		t.Fatalf("pid %d alive after Shutdown", sb.PID)
	}
	if _, err := os.Stat(filepath.Join(m.runDir, "b.json")); !os.IsNotExist(err) {
		t.Fatalf("record after Shutdown: %v", err)
	}
	late := m.Supervise(testConfig("late"))
	if err := late.Start(ctxT(t, 5*time.Second)); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
}

func TestSuperviseInvalidName(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	for _, name := range []string{"", "../escape", ".hidden", "-x", "a/b", strings.Repeat("n", 65)} {
		s := m.Supervise(testConfig(name))
		if err := s.Start(ctxT(t, 5*time.Second)); err == nil {
			t.Errorf("Start of %q succeeded", name)
		}
		if st := s.Snapshot(); !strings.Contains(st.LastError, "invalid instance name") {
			t.Errorf("%q: LastError = %q", name, st.LastError)
		}
		if _, err := s.Tail(5); err == nil {
			t.Errorf("Tail of %q succeeded", name)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(m.opts.DataDir)); len(entries) != 1 {
		t.Fatalf("files outside DataDir: %v", entries)
	}
}
