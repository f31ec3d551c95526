package runtime

import (
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// This file stops a child and handles its exit and the restart policy;
// everything here runs on the loop goroutine and may touch s.ls.

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
	s.stopProbe()
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
		s.stopChild(stopRestart, s.drainDone())
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
	restartAsked := ls.draining && ls.drainAsked
	s.setDraining(false)
	ls.killT.Stop()
	ls.idleT.Stop()
	ls.stableT.Stop()
	s.stopProbe()
	if c.healthCancel != nil {
		c.healthCancel()
	}
	s.ready.Store(nil)
	removeRecord(s.m.runDir, s.name)
	s.m.ports.release(s.name, c.port)
	if c.leased {
		ls.lastPort = c.port
	}
	if restartAsked && !c.stopping {
		// It ended while a requested restart drained it: that restart
		// goes on, and the exit is not a crash.
		c.stopping, ls.stopWhy = true, stopRestart
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
	switch {
	case starting:
		reason = "start failed: " + reason
	case ls.startErr == "": // else stopped as hung: startErr says so
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
