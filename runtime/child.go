package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// This file starts a child, waits for its health and handles idleness;
// everything here runs on the loop goroutine and may touch s.ls.

// startChild execs the configured binary and begins health probing.
func (s *Supervisor) startChild() {
	ls := &s.ls
	cfg := ls.cfg
	ls.backoffT.Stop()
	ls.startErr = ""
	fail := func(err error) {
		s.setPhase(PhaseStarting, "start")
		s.crashed(err.Error(), true)
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err == nil {
		bin, err = filepath.Abs(bin) // the child runs in DataDir
	}
	if err != nil {
		fail(fmt.Errorf("start: %w", err))
		return
	}
	host := bindHost(cfg.Host)
	port, leased := cfg.Port, false
	if port == 0 {
		port, err = s.m.ports.lease(s.name, host, ls.lastPort, ls.avoid)
		if err != nil {
			fail(err)
			return
		}
		leased = true
	} else {
		// An explicit port held by another process would make the child
		// fail to bind, and its /health probe could reach that process:
		// fail the start with the reason instead of exec'ing.
		if owner := s.m.ports.owner(port); owner != "" && owner != s.name {
			fail(fmt.Errorf("start: port %d is taken by instance %s", port, owner))
			return
		}
		if !s.m.ports.free(host, port) {
			fail(fmt.Errorf("start: %w", bindProblem(host, port)))
			return
		}
		s.m.ports.claim(s.name, port) // keep leases off an explicit port
	}
	release := func() { s.m.ports.release(s.name, port) }
	_ = rotateIdle(s.logPath, s.m.opts.LogMaxBytes, s.m.opts.LogBackups)
	logf, err := openLog(s.logPath)
	if err != nil {
		release()
		fail(err)
		return
	}
	defer logf.Close()
	var off int64
	if fi, err := logf.Stat(); err == nil {
		off = fi.Size()
	}
	argv := append([]string{bin}, cfg.Args...)
	argv = append(argv, "--host", host, "--port", strconv.Itoa(port))
	env := append([]string(nil), s.m.opts.Env...)
	for _, k := range sortedKeys(cfg.Env) {
		env = append(env, k+"="+cfg.Env[k])
	}
	pid, pidfd, err := spawn(argv, env, s.m.opts.DataDir, logf)
	if err != nil {
		release()
		fail(err)
		return
	}
	now := time.Now()
	w, err := newWatcher(pid, pid, pidfd, true)
	if err != nil {
		killGroup(pid, unix.SIGKILL)
		_, _ = unix.Wait4(pid, nil, 0, nil)
		release()
		fail(err)
		return
	}
	ls.gen++
	c := &child{
		gen: ls.gen, pid: pid, pgid: pid, port: port, leased: leased, host: host,
		addr:    net.JoinHostPort(probeHost(host), strconv.Itoa(port)),
		started: now, logOffset: off, hash: cfg.Hash, w: w,
	}
	ls.proc = c
	s.watch(c)
	c.rec = record{
		Name: s.name, PID: pid, PGID: pid, Host: host, Port: port, Leased: leased,
		Cmdline: argv, Binary: bin, Hash: cfg.Hash, StartedAt: now, LogOffset: off, Spec: cfg.Spec,
	}
	s.refreshRecord(c)
	s.awaitHealth(c)
	s.setPhase(PhaseStarting, fmt.Sprintf("pid %d on %s", pid, c.addr))
	s.publish()
}

// drainDone ends a drain and returns the reason of the stop it leads to.
func (s *Supervisor) drainDone() string {
	reason := "config changed"
	if s.ls.drainAsked {
		reason = "restart requested"
	}
	s.setDraining(false)
	return reason
}

// setDraining says whether the loop waits for the in-flight count to
// reach zero; only then does the last release signal the loop.
func (s *Supervisor) setDraining(b bool) {
	s.ls.draining = b
	if !b {
		s.ls.drainAsked = false
	}
	s.wantDrain.Store(b)
}

// awaitHealth polls c's /health on a helper goroutine, bounded by
// StartupTimeout, and reports to the loop.
func (s *Supervisor) awaitHealth(c *child) {
	ctx, cancel := context.WithTimeout(context.Background(), s.startupTimeout())
	c.healthCancel = cancel
	gen, addr := c.gen, c.addr
	s.m.wg.Go(func() {
		err := waitHealthy(ctx, addr)
		select {
		case s.events <- healthResult{gen: gen, err: err}:
		case <-s.done:
		}
	})
}

// refreshRecord writes c's record with its start time and command line as
// /proc shows them now (a wrapper script may have exec'd since).
func (s *Supervisor) refreshRecord(c *child) {
	if pi, err := readProc(c.pid); err == nil {
		c.rec.StartTime = pi.StartTime
		if len(pi.Cmdline) > 0 {
			c.rec.Cmdline = pi.Cmdline
		}
	}
	if err := writeRecord(s.m.runDir, c.rec); err != nil {
		s.m.log.Warn().Str("instance", s.name).Err(err).Msg("record child")
	}
}

// watch waits for c's exit on a helper goroutine.
func (s *Supervisor) watch(c *child) {
	gen, w := c.gen, c.w
	s.m.wg.Go(func() {
		st, ok := w.wait()
		if !ok {
			return
		}
		select {
		case s.events <- exited{gen: gen, st: st}:
		case <-s.done:
		}
	})
}

func (s *Supervisor) onHealth(h healthResult) {
	ls := &s.ls
	c := ls.proc
	if c == nil || c.gen != h.gen || c.stopping || ls.phase != PhaseStarting {
		return
	}
	c.healthCancel()
	if h.err != nil {
		ls.startErr = fmt.Sprintf("not healthy within startup timeout %s", s.startupTimeout())
		s.stopChild(stopFailed, ls.startErr)
		return
	}
	c.healthyAt = time.Now()
	if !c.adopted {
		s.refreshRecord(c)
	}
	ls.portRetries = 0
	ls.avoid = nil
	s.setPhase(PhaseRunning, "healthy")
	s.enterRunning()
}

// enterRunning opens the instance to requests.
func (s *Supervisor) enterRunning() {
	ls := &s.ls
	addr := ls.proc.addr
	s.ready.Store(&addr)
	for _, w := range ls.waiters {
		s.answer(w, ensureReply{addr: addr})
	}
	ls.waiters = nil
	ls.stableT.Reset(s.m.opts.StableAfter)
	s.armIdle(0)
	ls.liveSeq++
	ls.liveFails = 0
	s.armLive()
}

// armLive schedules the next liveness probe, unless they are off.
func (s *Supervisor) armLive() {
	if d := s.m.opts.LivenessInterval; d > 0 {
		s.ls.liveT.Reset(d)
	}
}

// probeLive probes a running child's /health on a helper goroutine (see
// ManagerOptions.LivenessInterval); onLive takes the result. The next
// probe is armed only then, so one child has one probe at a time.
func (s *Supervisor) probeLive() {
	ls := &s.ls
	c := ls.proc
	if c == nil || c.stopping || ls.phase != PhaseRunning {
		return
	}
	seq, addr, timeout := ls.liveSeq, c.addr, s.m.opts.LivenessTimeout
	ctx, cancel := context.WithCancel(context.Background())
	ls.liveCancel = cancel // stopChild, onExit and end cut the probe short
	s.m.wg.Go(func() {
		defer cancel()
		ok, err := probeHealth(ctx, addr, timeout)
		if err == nil && !ok {
			err = errNotHealthy
		}
		select {
		case s.events <- liveResult{seq: seq, err: err}:
		case <-s.done:
		}
	})
}

// errNotHealthy is a liveness probe that got an answer other than 200.
var errNotHealthy = errors.New("/health answered, not 200")

// onLive counts a liveness probe: a child whose /health failed
// LivenessFailures probes in a row is taken for hung, stopped, and
// restarted as after a crash.
func (s *Supervisor) onLive(r liveResult) {
	ls := &s.ls
	c := ls.proc
	if r.seq != ls.liveSeq || c == nil || c.stopping || ls.phase != PhaseRunning {
		return
	}
	ls.liveCancel = nil
	if r.err == nil {
		ls.liveFails = 0
		s.armLive()
		return
	}
	ls.liveFails++
	n := s.m.opts.LivenessFailures
	s.m.log.Warn().Str("instance", s.name).Int("pid", c.pid).Int("failed", ls.liveFails).Int("of", n).
		Err(r.err).Msg("liveness probe failed")
	if ls.liveFails < n {
		s.armLive()
		return
	}
	ls.startErr = fmt.Sprintf("hung: /health did not answer 200 to %d probes in a row, %s apart (last: %v)",
		n, s.m.opts.LivenessInterval, r.err)
	s.stopChild(stopFailed, ls.startErr)
}

// armIdle schedules the idle check d from now (d = 0: IdleTimeout).
func (s *Supervisor) armIdle(d time.Duration) {
	idle := s.ls.cfg.IdleTimeout
	if idle <= 0 {
		s.ls.idleT.Stop()
		return
	}
	if d <= 0 {
		d = idle
	}
	s.ls.idleT.Reset(d)
}

func (s *Supervisor) onIdleTimer() {
	ls := &s.ls
	idle := ls.cfg.IdleTimeout
	if ls.phase != PhaseRunning || ls.proc == nil || idle <= 0 {
		return
	}
	if s.inflight.Load() > 0 {
		s.armIdle(idle) // the last request ends later than now
		return
	}
	last := ls.proc.healthyAt
	if end := time.Unix(0, s.lastEnd.Load()); end.After(last) {
		last = end
	}
	if left := idle - time.Since(last); left > 0 {
		s.armIdle(left)
		return
	}
	// Close the door, then check nobody slipped in (EnsureReady increments
	// in-flight before re-checking ready).
	addr := s.ready.Swap(nil)
	if s.inflight.Load() > 0 {
		s.ready.Store(addr)
		s.armIdle(idle)
		return
	}
	s.stopChild(stopIdle, fmt.Sprintf("idle for %s", idle))
}
