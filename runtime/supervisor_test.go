package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	t.Parallel()
	m := newManager(t, nil)
	dir := t.TempDir()
	argvFile := filepath.Join(dir, "argv.json")
	cfg := testConfig("basic", "FAKELLAMA_ARGV_FILE="+argvFile, "FAKELLAMA_LOAD_DELAY=50ms")
	s := m.Supervise(cfg)
	events, cancel := s.Subscribe()
	defer cancel()
	if st := s.Snapshot(); st.Phase != PhaseStopped {
		t.Fatalf("new supervisor phase = %s, want stopped", st.Phase)
	}
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := waitPhase(t, s, PhaseRunning, 5*time.Second)
	if st.PID == 0 || st.Port < m.opts.PortMin || st.Port > m.opts.PortMax || st.StartedAt.IsZero() {
		t.Fatalf("running status = %+v", st)
	}
	addr, release, err := s.EnsureReady(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := httpDo("GET", addr, "/health", ""); err != nil || code != 200 {
		t.Fatalf("GET /health = %d, %v", code, err)
	}
	release()
	if a, release, ok := s.TryReady(); !ok || a != addr {
		t.Fatalf("TryReady while running = %q, %v", a, ok)
	} else {
		if n := s.Snapshot().InFlight; n != 1 {
			t.Fatalf("in flight after TryReady = %d", n)
		}
		release()
		release() // a second call has no effect
		if n := s.Snapshot().InFlight; n != 0 {
			t.Fatalf("in flight after release = %d", n)
		}
	}
	argv := readArgv(t, argvFile)
	wantTail := []string{"-m", "tiny.gguf", "--host", "127.0.0.1", "--port", strconv.Itoa(st.Port)}
	if !slices.Equal(argv, wantTail) {
		t.Fatalf("argv = %q, want %q", argv, wantTail)
	}
	if _, err := os.Stat(filepath.Join(m.runDir, "basic.json")); err != nil {
		t.Fatalf("record: %v", err)
	}
	pid, port := st.PID, st.Port
	if err := s.Stop(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st = s.Snapshot(); st.Phase != PhaseStopped || st.PID != 0 {
		t.Fatalf("after Stop: %+v", st)
	}
	if _, _, ok := s.TryReady(); ok || s.Snapshot().InFlight != 0 {
		t.Fatalf("TryReady after Stop granted or left a request in flight")
	}
	if alive(pid) {
		t.Fatalf("pid %d alive after Stop", pid)
	}
	if !portIsFree(port) {
		t.Fatalf("port %d busy after Stop", port)
	}
	if _, err := os.Stat(filepath.Join(m.runDir, "basic.json")); !os.IsNotExist(err) {
		t.Fatalf("record after stop: %v", err)
	}
	var got []string
	for len(got) < 4 {
		select {
		case ev := <-events:
			if ev.Name != "basic" || ev.At.IsZero() {
				t.Fatalf("event %+v", ev)
			}
			got = append(got, string(ev.From)+">"+string(ev.To))
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %v", got)
		}
	}
	want := []string{"stopped>starting", "starting>running", "running>stopping", "stopping>stopped"}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if _, _, err := s.EnsureReady(ctxT(t, 5*time.Second)); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("EnsureReady on stopped = %v", err)
	}
}
