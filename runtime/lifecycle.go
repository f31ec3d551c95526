package runtime

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// This file holds the loop goroutine's handlers; everything here runs on
// the loop and may touch s.ls.

// Port conflict detection: a child that exits with code 1 within
// quickExit of exec, on a leased port that is busy right after, lost its
// port to another process. It is retried on another port up to
// maxPortRetries times without counting as a crash.
const (
	quickExit      = 500 * time.Millisecond
	maxPortRetries = 3
	// reasonLines and reasonBytes bound the log excerpt in LastError.
	reasonLines = 5
	reasonBytes = 2048
)

func (s *Supervisor) handle(r request) {
	ls := &s.ls
	if ls.closing && r.kind != reqEnsure && r.kind != reqStop && r.kind != reqClose {
		r.reply <- errClosed
		return
	}
	switch r.kind {
	case reqEnsure:
		s.onEnsure(r.w)
	case reqStart:
		ls.desired = true
		if ls.phase == PhaseFailed {
			ls.restarts = 0
		}
		s.wake(false)
		r.reply <- nil
	case reqStop:
		ls.desired = false
		s.failWaiters(ErrStopped)
		if ls.proc == nil {
			s.toIdle("stop requested")
			r.reply <- nil
			return
		}
		ls.goneWaiters = append(ls.goneWaiters, r.reply)
		s.stopChild(stopAsked, "stop requested")
	case reqRestart:
		ls.desired = true
		ls.restarts = 0
		ls.lastError = ""
		if ls.proc == nil {
			s.wake(true)
			r.reply <- nil
			return
		}
		ls.goneWaiters = append(ls.goneWaiters, r.reply)
		s.stopChild(stopRestart, "restart requested")
	case reqUpdate:
		r.reply <- s.onUpdate(r.cfg)
	case reqClose:
		ls.closing = true
		if r.detach && ls.proc != nil {
			// Leave the child running with its record for the next daemon.
			ls.proc.w.cancel()
			if ls.proc.healthCancel != nil {
				ls.proc.healthCancel()
			}
			ls.proc = nil
			s.ready.Store(nil)
			r.reply <- nil
			return
		}
		ls.desired = false
		s.failWaiters(ErrStopped)
		if ls.proc == nil {
			s.toIdle("shutdown")
			r.reply <- nil
			return
		}
		ls.goneWaiters = append(ls.goneWaiters, r.reply)
		s.stopChild(stopAsked, "shutdown")
	}
}

// wake moves a desired-running instance without a child towards running:
// it starts it now, or puts it to sleep when OnDemand (unless force or
// someone waits).
func (s *Supervisor) wake(force bool) {
	ls := &s.ls
	switch ls.phase {
	case PhaseStopped, PhaseFailed, PhaseSleeping:
		if ls.proc != nil {
			return
		}
		if ls.cfg.OnDemand && !force && len(ls.waiters) == 0 {
			s.setPhase(PhaseSleeping, "waiting for a request")
			return
		}
		s.startChild()
	case PhaseBackoff:
		if force {
			ls.backoffT.Stop()
			s.startChild()
		}
	}
}

// toIdle settles an instance that has no child.
func (s *Supervisor) toIdle(reason string) {
	ls := &s.ls
	ls.backoffT.Stop()
	if !ls.desired {
		s.setPhase(PhaseStopped, reason)
		return
	}
	s.wake(false)
}

func (s *Supervisor) onEnsure(w *waiter) {
	ls := &s.ls
	switch {
	case ls.closing || !ls.desired:
		s.answer(w, ensureReply{err: ErrStopped})
		return
	case ls.phase == PhaseFailed:
		s.answer(w, ensureReply{err: fmt.Errorf("%w: %s", ErrFailed, ls.lastError)})
		return
	case ls.phase == PhaseRunning && s.ready.Load() != nil:
		s.answer(w, ensureReply{addr: *s.ready.Load()})
		return
	}
	ls.waiters = slices.DeleteFunc(ls.waiters, func(w *waiter) bool { return w.state.Load() != 0 })
	ls.waiters = append(ls.waiters, w)
	if ls.phase == PhaseSleeping {
		s.startChild()
	}
}

// answer replies to one waiter unless it gave up; a granted request counts
// as in flight from here.
func (s *Supervisor) answer(w *waiter, r ensureReply) {
	if !w.state.CompareAndSwap(0, 1) {
		return
	}
	if r.err == nil {
		s.inflight.Add(1)
	}
	w.reply <- r
}

func (s *Supervisor) failWaiters(err error) {
	for _, w := range s.ls.waiters {
		s.answer(w, ensureReply{err: err})
	}
	s.ls.waiters = nil
}

func (s *Supervisor) replyGone(err error) {
	for _, ch := range s.ls.goneWaiters {
		ch <- err
	}
	s.ls.goneWaiters = nil
}

func (s *Supervisor) onUpdate(cfg Config) error {
	ls := &s.ls
	if cfg.Name != s.name {
		return fmt.Errorf("%w: %q != %q", errNameChange, cfg.Name, s.name)
	}
	old := ls.cfg
	ls.cfg = cfg
	if cfg.Hash == old.Hash {
		if ls.phase == PhaseRunning {
			s.armIdle(0)
		}
		return nil
	}
	ls.restarts = 0
	switch {
	case ls.phase == PhaseFailed:
		ls.lastError = ""
		if ls.desired {
			s.wake(false)
		} else {
			s.setPhase(PhaseStopped, "config changed")
		}
	case ls.phase == PhaseBackoff:
		s.wake(true)
	case ls.draining && ls.proc.hash == cfg.Hash: // changed back: keep the process
		s.setDraining(false)
		ls.killT.Stop()
		s.setPhase(PhaseRunning, "config changed back")
		s.enterRunning()
	case ls.proc != nil && !ls.proc.stopping && ls.proc.hash != cfg.Hash:
		// Let in-flight requests finish (bounded by StopTimeout); new ones
		// wait in EnsureReady for the new process.
		s.ready.Store(nil)
		s.setDraining(true) // before the check: a release now signals the loop
		if s.inflight.Load() == 0 {
			s.stopChild(stopRestart, "config changed")
			return nil
		}
		s.setPhase(PhaseStopping, "config changed: draining in-flight requests")
		ls.killT.Reset(s.stopTimeout())
	}
	return nil
}

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
		Cmdline: argv, Binary: bin, Hash: cfg.Hash, StartedAt: now, LogOffset: off,
	}
	s.refreshRecord(c)
	s.awaitHealth(c)
	s.setPhase(PhaseStarting, fmt.Sprintf("pid %d on %s", pid, c.addr))
	s.publish()
}

// setDraining says whether the loop waits for the in-flight count to
// reach zero; only then does the last release signal the loop.
func (s *Supervisor) setDraining(b bool) {
	s.ls.draining = b
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

// stopChild begins a graceful stop of the current child: SIGTERM to its
// group now, SIGKILL after StopTimeout.
func (s *Supervisor) stopChild(why stopReason, reason string) {
	ls := &s.ls
	c := ls.proc
	if c == nil {
		return
	}
	s.ready.Store(nil)
	s.setDraining(false)
	if c.healthCancel != nil {
		c.healthCancel()
	}
	if !c.stopping || why == stopAsked {
		ls.stopWhy = why
	}
	if c.stopping {
		return
	}
	c.stopping = true
	ls.idleT.Stop()
	ls.stableT.Stop()
	killGroup(c.pgid, unix.SIGTERM)
	ls.killT.Reset(s.stopTimeout())
	s.setPhase(PhaseStopping, reason)
}

func (s *Supervisor) onKillTimer() {
	ls := &s.ls
	c := ls.proc
	if c == nil {
		return
	}
	if ls.draining { // in-flight requests took too long
		s.setDraining(false)
		s.stopChild(stopRestart, "config changed")
		return
	}
	if c.stopping {
		s.m.log.Warn().Str("instance", s.name).Int("pid", c.pid).Msg("stop timeout: SIGKILL")
		killGroup(c.pgid, unix.SIGKILL)
	}
}

// onExit handles the end of the current child.
func (s *Supervisor) onExit(e exited) {
	ls := &s.ls
	c := ls.proc
	if c == nil || c.gen != e.gen {
		return
	}
	ls.proc = nil
	s.setDraining(false)
	ls.killT.Stop()
	ls.idleT.Stop()
	ls.stableT.Stop()
	if c.healthCancel != nil {
		c.healthCancel()
	}
	s.ready.Store(nil)
	removeRecord(s.m.runDir, s.name)
	s.m.ports.release(s.name, c.port)
	if c.leased {
		ls.lastPort = c.port
	}
	if c.stopping && ls.stopWhy != stopFailed {
		why := ls.stopWhy
		ls.stopWhy = stopNone
		defer s.replyGone(nil) // after the new phase is published
		switch {
		case !ls.desired:
			s.setPhase(PhaseStopped, "stopped")
		case why == stopRestart || len(ls.waiters) > 0:
			s.startChild()
		case why == stopIdle:
			s.setPhase(PhaseSleeping, "stopped for idleness")
		case ls.cfg.OnDemand:
			s.setPhase(PhaseSleeping, "waiting for a request")
		default:
			s.startChild()
		}
		return
	}
	ls.stopWhy = stopNone
	reason := e.st.String()
	if ls.startErr != "" {
		reason = ls.startErr
	}
	if lines := lastLines(s.logPath, reasonLines, c.logOffset, reasonBytes); lines != "" {
		reason += "; last log lines:\n" + lines
	}
	starting := c.healthyAt.IsZero()
	if starting && c.leased && e.st.Code == 1 && e.st.At.Sub(c.started) < quickExit &&
		ls.portRetries < maxPortRetries && !s.m.ports.free(c.host, c.port) {
		ls.portRetries++
		if ls.avoid == nil {
			ls.avoid = map[int]bool{}
		}
		ls.avoid[c.port] = true
		s.m.log.Info().Str("instance", s.name).Int("port", c.port).Msg("port taken by another process: retrying on another port")
		s.startChild()
		return
	}
	if starting {
		reason = "start failed: " + reason
	} else {
		reason = "crashed: " + reason
	}
	s.crashed(reason, starting)
}

// crashed counts an exit nobody asked for against the restart budget.
// Waiters of a failed start get ErrNotReady; they are answered after the
// new phase is published.
func (s *Supervisor) crashed(reason string, starting bool) {
	ls := &s.ls
	ls.lastError = reason
	ls.portRetries = 0
	ls.avoid = nil
	waitErr := fmt.Errorf("%w: %s", ErrNotReady, reason)
	cfg := ls.cfg
	switch {
	case !ls.desired:
		s.setPhase(PhaseStopped, reason)
		waitErr = ErrStopped
	case !cfg.AutoRestart:
		s.setPhase(PhaseFailed, reason)
		if !starting {
			waitErr = fmt.Errorf("%w: %s", ErrFailed, reason)
		}
	default:
		ls.restarts++
		if cfg.MaxRestarts >= 0 && ls.restarts > cfg.MaxRestarts {
			ls.restarts = cfg.MaxRestarts
			ls.lastError = fmt.Sprintf("gave up after %d restarts: %s", cfg.MaxRestarts, reason)
			s.setPhase(PhaseFailed, ls.lastError)
			if !starting {
				waitErr = fmt.Errorf("%w: %s", ErrFailed, ls.lastError)
			}
			break
		}
		d := backoffDelay(cfg.RestartDelay, s.m.opts.MaxRestartDelay, ls.restarts)
		ls.backoffT.Reset(d)
		s.setPhase(PhaseBackoff, fmt.Sprintf("restart %d in %s: %s", ls.restarts, d, reason))
		if !starting {
			return // waiters (if any) wait for the restart
		}
	}
	s.failWaiters(waitErr)
}

// backoffDelay is the wait before restart number n (1-based): base doubled
// n-1 times, capped at max.
func backoffDelay(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
