package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"llamactl/runtime"
	"llamactl/spec"
)

// portBlock gives each real manager its own ports, away from the blocks
// other packages' tests use.
var portBlock atomic.Int32

// newRealLoop runs a loop over dir with a real runtime.Manager and
// fakellama as llama-server.
func newRealLoop(t testing.TB, dir string, mod func(*Options)) (*Loop, *runtime.Manager) {
	t.Helper()
	base := 51000 + int(portBlock.Add(1))*50%4000
	m, err := runtime.NewManager(runtime.ManagerOptions{DataDir: t.TempDir(), PortMin: base, PortMax: base + 49})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	opts := Options{
		SpecsDir: dir,
		Debounce: 50 * time.Millisecond,
		Binary:   fakellamaBin,
		Runtime:  m,
		Defaults: Defaults{StopTimeout: 5 * time.Second, StartupTimeout: 20 * time.Second, RestartDelay: 100 * time.Millisecond, MaxRestarts: 3},
	}
	if mod != nil {
		mod(&opts)
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	startLoop(t, l)
	return l, m
}

// fakeSpec is a spec body for fakellama that records its pid and argv
// under state.
func fakeSpec(state, name string, extra ...string) string {
	return fmt.Sprintf("model: /models/%s.gguf\nenv:\n  FAKELLAMA_PID_FILE: %s\n  FAKELLAMA_ARGV_FILE: %s\n%s\n",
		name, filepath.Join(state, name+".pid"), filepath.Join(state, name+".argv"), strings.Join(extra, "\n"))
}

// runningPID waits until name runs healthy and its pid file names the
// pid the supervisor reports, and returns that pid.
func runningPID(t testing.TB, l *Loop, state, name string, not int) int {
	t.Helper()
	var pid int
	waitFor(t, name+" to run", func() bool {
		st, err := l.Get(name)
		if err != nil || st.Runtime.Phase != runtime.PhaseRunning || st.Runtime.PID == not || st.Runtime.PID == 0 {
			return false
		}
		data, err := os.ReadFile(filepath.Join(state, name+".pid"))
		if err != nil {
			return false
		}
		got, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		pid = st.Runtime.PID
		return got == pid
	})
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestRealFleet(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), fakeSpec(state, "a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), fakeSpec(state, "b"))
	l, m := newRealLoop(t, dir, nil)
	pa, pb := runningPID(t, l, state, "a", 0), runningPID(t, l, state, "b", 0)

	t.Run("new file starts", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "c.yaml"), fakeSpec(state, "c"))
		runningPID(t, l, state, "c", 0)
	})
	t.Run("edit restarts only that instance", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "a.yaml"), fakeSpec(state, "a", "ctx_size: 4096"))
		pa = runningPID(t, l, state, "a", pa)
		argv, _ := os.ReadFile(filepath.Join(state, "a.argv"))
		if !strings.Contains(string(argv), "4096") {
			t.Fatalf("argv = %q", argv)
		}
		if st, _ := l.Get("b"); st.Runtime.PID != pb || !alive(pb) {
			t.Fatalf("b changed: pid %d, was %d", st.Runtime.PID, pb)
		}
	})
	t.Run("comment-only edit restarts nothing", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "b.yaml"), "# owner: infra\n"+fakeSpec(state, "b"))
		waitSeen(t, l, filepath.Join(dir, "b.yaml"))
		settle(t, l)
		if st, _ := l.Get("b"); st.Runtime.PID != pb || st.Sync != "synced" {
			t.Fatalf("b: pid %d (was %d), %s", st.Runtime.PID, pb, st.Sync)
		}
	})
	t.Run("broken file keeps the process", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "a.yaml"), fakeSpec(state, "a", "ctx_size: [1"))
		waitFor(t, "the error", func() bool { st, _ := l.Get("a"); return st.Error != "" })
		st, _ := l.Get("a")
		if !strings.HasPrefix(st.Error, "a.yaml:") || st.Runtime.PID != pa || !alive(pa) {
			t.Fatalf("status = %q pid %d (was %d)", st.Error, st.Runtime.PID, pa)
		}
		writeFile(t, filepath.Join(dir, "a.yaml"), fakeSpec(state, "a", "ctx_size: 4096"))
		waitFor(t, "the fix", func() bool { st, _ := l.Get("a"); return st.Error == "" })
		settle(t, l)
		if st, _ := l.Get("a"); st.Runtime.PID != pa {
			t.Fatalf("fix back to the running spec restarted a: %d -> %d", pa, st.Runtime.PID)
		}
	})
	t.Run("delete stops and removes", func(t *testing.T) {
		must(t, os.Remove(filepath.Join(dir, "b.yaml")))
		waitFor(t, "b to go", func() bool { _, ok := m.Get("b"); return !ok && !alive(pb) })
		if _, err := l.Get("b"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if st, _ := l.Get("a"); st.Runtime.PID != pa {
			t.Fatal("a touched by b's delete")
		}
	})
}

func TestRealAPIWrites(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	l, _ := newRealLoop(t, dir, nil)
	s, err := spec.Decode([]byte(fakeSpec(state, "api", "alias: chat")), spec.YAML, "api.yaml")
	must(t, err)
	if _, err := l.Create("api", s, ""); err != nil {
		t.Fatal(err)
	}
	pid := runningPID(t, l, state, "api", 0)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name, addr, release, err := l.Acquire(ctx, "chat")
	if err != nil || name != "api" {
		t.Fatalf("acquire: %q %v", name, err)
	}
	resp, err := http.Get("http://" + addr + "/health")
	must(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	release()
	if resp.StatusCode != 200 {
		t.Fatalf("health = %d", resp.StatusCode)
	}

	st, err := l.SetState(ctx, "api", spec.StateStopped)
	if err != nil {
		t.Fatal(err)
	}
	if st.Runtime.Phase != runtime.PhaseStopped || alive(pid) {
		t.Fatalf("after stop: phase %s, pid %d alive %v", st.Runtime.Phase, pid, alive(pid))
	}
	if _, err := l.SetState(ctx, "api", spec.StateRunning); err != nil {
		t.Fatal(err)
	}
	pid2 := runningPID(t, l, state, "api", pid)
	waitSeen(t, l, filepath.Join(dir, "api.yaml"))
	settle(t, l)
	if st, _ := l.Get("api"); st.Runtime.PID != pid2 {
		t.Fatalf("our own write restarted the instance: %d -> %d", pid2, st.Runtime.PID)
	}
	if _, err := l.Restart(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	runningPID(t, l, state, "api", pid2) // a new process, same file
	if data, _ := os.ReadFile(filepath.Join(dir, "api.yaml")); !strings.Contains(string(data), "state: running") {
		t.Fatalf("file:\n%s", data)
	}
	logs, err := l.Logs("api", 50)
	if err != nil || len(logs) == 0 {
		t.Fatalf("logs: %q %v", logs, err)
	}
}

// TestRealRestartAdoptsChildren restarts the daemon side (a new manager
// and loop over the same data dir) with children kept running: after
// Loaded, ReapStale must find nothing to reap and every child is adopted,
// not restarted; an instance deleted meanwhile is reaped.
func TestRealRestartAdoptsChildren(t *testing.T) {
	dir, state, data := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), fakeSpec(state, "a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), fakeSpec(state, "b"))
	base := 51000 + int(portBlock.Add(1))*50%4000
	run := func(keep bool) (*Loop, *runtime.Manager, func()) { return runDaemon(t, dir, data, base, keep) }

	l1, _, stop1 := run(true)
	pa, pb := runningPID(t, l1, state, "a", 0), runningPID(t, l1, state, "b", 0)
	stop1()
	if !alive(pa) || !alive(pb) {
		t.Fatal("children did not survive the shutdown")
	}
	must(t, os.Remove(filepath.Join(dir, "b.yaml")))

	l2, m2, stop2 := run(false)
	defer stop2()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, m2.ReapStale(ctx))
	st, err := l2.Get("a")
	must(t, err)
	if st.Runtime.PID != pa || !st.Runtime.Adopted || !alive(pa) {
		t.Fatalf("a not adopted: %+v (was pid %d)", st.Runtime, pa)
	}
	waitFor(t, "b's child to be reaped", func() bool { return !alive(pb) })
}

// runDaemon runs a loop over dir with a real runtime manager on data (the
// way llamactl serve does), waits for its initial load and returns a stop
// func that ends the loop and shuts the manager down (keeping children
// running with keep, for the next runDaemon to adopt).
func runDaemon(t *testing.T, dir, data string, base int, keep bool) (*Loop, *runtime.Manager, func()) {
	t.Helper()
	m, err := runtime.NewManager(runtime.ManagerOptions{DataDir: data, PortMin: base, PortMax: base + 49, KeepOnShutdown: keep})
	must(t, err)
	l, err := New(Options{SpecsDir: dir, Debounce: 50 * time.Millisecond, Binary: fakellamaBin, Runtime: m,
		Defaults: Defaults{StopTimeout: 5 * time.Second, StartupTimeout: 20 * time.Second}})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	select {
	case <-l.Loaded():
	case <-time.After(20 * time.Second):
		t.Fatal("not loaded")
	}
	return l, m, func() {
		cancel()
		must(t, <-done)
		sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer scancel()
		must(t, m.Shutdown(sctx))
	}
}
