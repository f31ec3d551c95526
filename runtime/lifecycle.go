package runtime

import (
	"bytes"
	"fmt"
	"slices"
)

// This file holds the loop's request handlers; everything here runs on
// the loop goroutine and may touch s.ls.

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
		if ls.draining && !ls.proc.stopping {
			ls.drainAsked = true // a drain under way (a restart's or a config change's) serves this one too
			return
		}
		if p := ls.proc; ls.phase == PhaseRunning && !p.stopping {
			// As for a config change: requests in flight finish first
			// (bounded by StopTimeout); new ones wait for the new process.
			s.ready.Store(nil)
			s.setDraining(true) // before the check: a release now signals the loop
			ls.drainAsked = true
			if s.inflight.Load() > 0 {
				s.setPhase(PhaseStopping, "restart requested: draining in-flight requests")
				ls.killT.Reset(s.stopTimeout())
				return
			}
		}
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
			s.stopProbe()
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
	s.setConfig(cfg)
	if p := ls.proc; p != nil && p.hash == cfg.Hash && !bytes.Equal(p.rec.Spec, cfg.Spec) {
		// The same process, described anew (a supervision field changed).
		p.rec.Spec = cfg.Spec
		if err := writeRecord(s.m.runDir, p.rec); err != nil {
			s.m.log.Warn().Str("instance", s.name).Err(err).Msg("record child")
		}
	}
	if cfg.Hash == old.Hash {
		switch {
		case ls.phase == PhaseRunning:
			s.armIdle(0)
		case ls.phase == PhaseSleeping && old.OnDemand && !cfg.OnDemand && ls.desired:
			// No longer started on demand: a sleeping instance starts now.
			s.startChild()
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
	case ls.draining && !ls.drainAsked && ls.proc.hash == cfg.Hash: // changed back: keep the process
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
