package e2e

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid is a live process: it exists and is not a
// zombie (an orphan whose parent, possibly a container's PID 1, has not
// reaped it yet is dead for our purposes).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// hold spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

// fakeProc is a live fakellama process of a fleet.
type fakeProc struct {
	PID     int
	PidFile string // its FAKELLAMA_PID_FILE, if set
}

// children lists the live fakellama processes whose environment mentions
// the fleet root (every child of a daemon of this fleet does: the daemon
// passes its environment on, and the specs' pid file paths lie under the
// root). The daemon's short-lived --help/--version probes count too.
func (fd *fleetDir) children() []fakeProc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []fakeProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + e.Name()
		exe, err := os.Readlink(dir + "/exe")
		if err != nil || strings.TrimSuffix(exe, " (deleted)") != fakellamaBin {
			continue
		}
		env, err := os.ReadFile(dir + "/environ")
		if err != nil || !bytes.Contains(env, []byte(fd.Root)) || !alive(pid) {
			continue
		}
		p := fakeProc{PID: pid}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("FAKELLAMA_PID_FILE=")); ok {
				p.PidFile = string(v)
			}
		}
		out = append(out, p)
	}
	return out
}

// instancePids lists the live fakellama processes of instance name.
func (fd *fleetDir) instancePids(name string) []int {
	var pids []int
	want := fd.pidFile(name)
	for _, p := range fd.children() {
		if p.PidFile == want {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// readPid returns the pid the child of instance name last wrote, or 0.
func (fd *fleetDir) readPid(name string) int {
	b, err := os.ReadFile(fd.pidFile(name))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// killChildren SIGKILLs every fakellama process of the fleet and its
// process group, and waits until they are gone.
func (fd *fleetDir) killChildren(t testing.TB) {
	pids := map[int]bool{}
	for _, p := range fd.children() {
		pids[p.PID] = true
	}
	files, _ := filepath.Glob(filepath.Join(fd.PidDir, "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && isFakellama(pid) {
			pids[pid] = true
		}
	}
	for pid := range pids {
		// Each child leads its own process group; kill the group first so
		// anything it spawned goes too.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Logf("kill fakellama pid %d: %v", pid, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("fakellama pid %d survived SIGKILL", pid)
		}
	}
}

// isFakellama reports whether pid runs the fakellama binary under test
// (a pid file may name a pid that has since been reused).
func isFakellama(pid int) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == fakellamaBin
}
