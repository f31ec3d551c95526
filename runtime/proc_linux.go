//go:build linux

package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procInfo identifies a process across daemon restarts: a pid alone can be
// reused, pid + start time + argv cannot (in practice).
type procInfo struct {
	StartTime uint64   // /proc/<pid>/stat field 22, clock ticks since boot
	Cmdline   []string // /proc/<pid>/cmdline
	PGID      int
	Zombie    bool
}

// readProc reads what identifies pid. It fails when pid does not exist.
func readProc(pid int) (procInfo, error) {
	pi, err := readStat(pid)
	if err != nil {
		return pi, err
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return pi, fmt.Errorf("read cmdline of pid %d: %w", pid, err)
	}
	cmd = bytes.TrimSuffix(cmd, []byte{0})
	if len(cmd) > 0 {
		pi.Cmdline = strings.Split(string(cmd), "\x00")
	}
	return pi, nil
}

// readStat reads /proc/<pid>/stat: state, process group, start time.
func readStat(pid int) (procInfo, error) {
	var pi procInfo
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pi, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces or
	// parentheses itself; the fields after the last ')' are plain.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return pi, fmt.Errorf("parse stat of pid %d: no ')'", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return pi, fmt.Errorf("parse stat of pid %d: %d fields", pid, len(f))
	}
	pi.Zombie = f[0] == "Z" || f[0] == "X"
	pi.PGID, _ = strconv.Atoi(f[2])
	pi.StartTime, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return pi, fmt.Errorf("parse starttime of pid %d: %w", pid, err)
	}
	return pi, nil
}

// spawn starts argv in its own process group with stdout and stderr on
// logf and stdin on /dev/null, in dir. It returns the pid and a pidfd.
func spawn(argv, env []string, dir string, logf *os.File) (pid, pidfd int, err error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, -1, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	pid, err = syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{devnull.Fd(), logf.Fd(), logf.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return 0, -1, fmt.Errorf("exec %s: %w", argv[0], err)
	}
	// The child is unreaped until we wait for it, so its pid cannot be
	// reused before pidfd_open.
	pidfd, err = unix.PidfdOpen(pid, 0)
	if err != nil {
		_ = unix.Kill(-pid, unix.SIGKILL)
		_, _ = unix.Wait4(pid, nil, 0, nil)
		return 0, -1, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return pid, pidfd, nil
}

// exitStatus is how a process ended. Code is -1 when it is unknown (an
// adopted process is not our child) or the process was killed by a signal.
type exitStatus struct {
	Code   int
	Signal syscall.Signal
	At     time.Time
}

func (e exitStatus) String() string {
	switch {
	case e.Signal != 0:
		return "killed by " + signalName(e.Signal)
	case e.Code >= 0:
		return "exit code " + strconv.Itoa(e.Code)
	default:
		return "exited"
	}
}

// signalName names a signal as kill(1) does (SIGKILL), with its number
// for the rare ones.
func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGILL: "SIGILL",
		syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
		syscall.SIGKILL: "SIGKILL", syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM", syscall.SIGXCPU: "SIGXCPU",
		syscall.SIGXFSZ: "SIGXFSZ", syscall.SIGSYS: "SIGSYS",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return "signal " + strconv.Itoa(int(sig)) + " (" + sig.String() + ")"
}

// watcher waits for one process to end without blocking a goroutine in
// an uncancellable wait: it polls a pidfd together with an eventfd that
// cancel writes to.
type watcher struct {
	pid, pgid int
	pidfd     int
	cancelfd  int
	own       bool // our child: reap it with wait4

	mu     sync.Mutex
	closed bool // fds closed; guards cancel against a reused fd number
}

func newWatcher(pid, pgid, pidfd int, own bool) (*watcher, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(pidfd)
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	return &watcher{pid: pid, pgid: pgid, pidfd: pidfd, cancelfd: efd, own: own}, nil
}

func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		_ = unix.Close(w.pidfd)
		_ = unix.Close(w.cancelfd)
	}
}

// wait blocks until the process ends (ok true) or cancel is called (ok
// false). When the leader ended, the rest of its group is killed before
// the leader is reaped (its pgid cannot be reused meanwhile), so a
// grandchild never outlives it holding the port. wait closes the fds.
func (w *watcher) wait() (st exitStatus, ok bool) {
	defer w.close()
	fds := []unix.PollFd{{Fd: int32(w.pidfd), Events: unix.POLLIN}, {Fd: int32(w.cancelfd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return st, false
		}
		if fds[0].Revents != 0 {
			break
		}
		if fds[1].Revents != 0 {
			return st, false
		}
	}
	st = exitStatus{Code: -1, At: time.Now()}
	killGroup(w.pgid, unix.SIGKILL)
	var ws unix.WaitStatus
	opts := 0
	if !w.own {
		opts = unix.WNOHANG // a previous daemon's child may still be ours
	}
	if wpid, err := unix.Wait4(w.pid, &ws, opts, nil); err == nil && wpid == w.pid {
		if ws.Signaled() {
			st.Signal = ws.Signal()
		} else {
			st.Code = ws.ExitStatus()
		}
	}
	// SIGKILL is delivered asynchronously: wait (briefly) until no live
	// member of the group is left, so the port is free once the exit is
	// reported.
	for deadline := time.Now().Add(time.Second); !groupGone(w.pgid) && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	return st, true
}

// groupGone reports whether process group pgid has no live (non-zombie)
// member. Zombies count as gone: they hold no sockets.
func groupGone(pgid int) bool {
	if pgid <= 1 || unix.Kill(-pgid, 0) != nil {
		return true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pi, err := readStat(pid)
		if err == nil && pi.PGID == pgid && !pi.Zombie {
			return false
		}
	}
	return true
}

// cancel makes a pending or future wait return false.
func (w *watcher) cancel() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(w.cancelfd, one[:])
	}
}

// killGroup signals a process group; a gone group is not an error.
func killGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		_ = unix.Kill(-pgid, sig)
	}
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := unix.Kill(pid, 0); err != nil && !errors.Is(err, unix.EPERM) {
		return false
	}
	pi, err := readProc(pid)
	return err == nil && !pi.Zombie
}
