package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Supervisor runs one instance. Its methods are safe for concurrent use.
//
// One goroutine (loop) owns the instance's state: the config, the phase,
// the child process and the timers. Callers send it a request with a reply
// channel; readers use atomics (Snapshot reads a published Status,
// EnsureReady's hot path reads the ready address and the in-flight count).
//
// Phases and transitions (desired = what Start/Stop asked for):
//
//	from       event                                  to
//	stopped    Start (desired running)                starting, or sleeping when OnDemand
//	sleeping   EnsureReady                            starting
//	starting   /health answers 200                    running
//	starting   quick exit code 1, leased port busy    starting on another port (not counted)
//	starting   exit, or StartupTimeout                backoff (AutoRestart, budget left) | failed
//	running    exit not asked for (a crash)           backoff (AutoRestart, budget left) | failed
//	running    IdleTimeout, nothing in flight         stopping -> sleeping
//	running    Update with a new hash                 stopping (after in-flight requests) -> starting
//	backoff    restart delay elapsed                  starting
//	any        Stop                                   stopping -> stopped (or stopped at once)
//	failed     Start, Restart, Update with a new hash starting (sleeping when OnDemand)
//
// An exit after a requested stop is never a crash. With AutoRestart false a
// crash ends in failed with the reason in LastError. MaxRestarts < 0 means
// no limit; 0 means no restart. The restart delay doubles from RestartDelay
// up to ManagerOptions.MaxRestartDelay; the count resets after the instance
// stayed healthy for ManagerOptions.StableAfter. IdleTimeout applies to
// every instance (OnDemand only says whether it starts asleep).
type Supervisor struct {
	m       *Manager
	name    string
	logPath string
	reqs    chan request
	events  chan any      // exited / healthResult from helper goroutines
	drained chan struct{} // cap 1: in-flight count reached 0
	done    chan struct{} // closed when loop has ended

	ready     atomic.Pointer[string] // upstream address while running and accepting requests
	inflight  atomic.Int64
	wantDrain atomic.Bool  // the loop waits for inflight to reach 0
	lastEnd   atomic.Int64 // unix nanoseconds of the end of the last request
	// timesEnds is whether requests record lastEnd: only an IdleTimeout
	// reads it, and reading the clock is a share of a proxied request.
	timesEnds atomic.Bool
	status    atomic.Pointer[Status]

	subMu  sync.Mutex
	subs   map[chan Event]struct{}
	subEnd bool // loop ended: no new subscriptions

	ls loopState // owned by the loop goroutine
}

// loopState is touched only by the loop goroutine (and by boot, before the
// loop starts).
type loopState struct {
	cfg       Config
	desired   bool // running
	phase     Phase
	since     time.Time
	lastError string
	restarts  int
	proc      *child
	gen       uint64
	closing   bool // Shutdown/Remove: end once the child is gone

	waiters     []*waiter          // EnsureReady callers waiting for running
	goneWaiters []chan error       // Stop/Restart callers waiting for the child to go
	lastPort    int                // port of the previous child, preferred again
	portRetries int                // quick port-conflict exits in this start
	avoid       map[int]bool       // ports that conflicted in this start
	draining    bool               // waiting for in-flight requests before a restart
	drainAsked  bool               // the drain is a requested restart's, not a config change's
	backoffT    *time.Timer        // phase backoff
	killT       *time.Timer        // stopping: SIGKILL; draining: give up waiting
	idleT       *time.Timer        // running: idle check
	stableT     *time.Timer        // running: reset restarts
	liveT       *time.Timer        // running: next liveness probe
	liveFails   int                // liveness probes failed in a row
	liveSeq     uint64             // counts enterRunning: a probe of an earlier run is ignored
	liveCancel  context.CancelFunc // ends the liveness probe under way, if any
	logT        *time.Ticker       // log rotation check
	timers      []*time.Timer      // all of the above, for cleanup
	startErr    string             // why the current child was stopped as failed (startup timeout, hung)
	stopWhy     stopReason         // why the current child is being stopped
}

type stopReason int

const (
	stopNone    stopReason = iota
	stopAsked              // Stop, Shutdown, Remove
	stopIdle               // IdleTimeout
	stopRestart            // Restart or Update with a new hash
	stopStale              // a recorded child of a previous run with another hash
	stopFailed             // startup timeout, or hung (liveness): an exit counted as a crash
)

// child is one running process. Owned by the loop.
type child struct {
	gen          uint64
	pid, pgid    int
	port         int
	leased       bool
	host, addr   string
	started      time.Time // exec
	healthyAt    time.Time
	logOffset    int64
	hash         string
	adopted      bool
	stopping     bool
	w            *watcher
	healthCancel context.CancelFunc
	rec          record // as written to DataDir/run (own children)
}

// waiter is one EnsureReady caller waiting in the loop. state: 0 waiting,
// 1 answered by the loop, 2 abandoned by the caller (its ctx ended).
type waiter struct {
	state atomic.Int32
	reply chan ensureReply // cap 1
}

type ensureReply struct {
	addr string
	err  error
}

type reqKind int

const (
	reqStart reqKind = iota
	reqStop
	reqRestart
	reqUpdate
	reqEnsure
	reqClose
)

type request struct {
	kind   reqKind
	cfg    Config
	detach bool
	w      *waiter
	reply  chan error // cap 1
}

// exited and healthResult come from a child's watcher and health goroutines.
type exited struct {
	gen uint64
	st  exitStatus
}

type healthResult struct {
	gen uint64
	err error
}

// liveResult is one liveness probe of a running child (see
// ManagerOptions.LivenessInterval).
type liveResult struct {
	seq uint64 // liveSeq when the probe began
	err error  // nil: /health answered 200
}

func newSupervisor(m *Manager, cfg Config) *Supervisor {
	s := &Supervisor{
		m:       m,
		name:    cfg.Name,
		reqs:    make(chan request),
		events:  make(chan any),
		drained: make(chan struct{}, 1),
		done:    make(chan struct{}),
		subs:    map[chan Event]struct{}{},
	}
	if validName(cfg.Name) {
		s.logPath = filepath.Join(m.logDir, cfg.Name+".log")
	}
	s.setConfig(cfg)
	s.ls.phase = PhaseStopped
	s.ls.since = time.Now()
	s.publish()
	return s
}

// setConfig makes cfg the loop's config. An idle timeout switched on
// needs no past ends: the update re-arms the idle check a whole timeout
// from now (onUpdate), and a start arms it from health.
func (s *Supervisor) setConfig(cfg Config) {
	s.ls.cfg = cfg
	s.timesEnds.Store(cfg.IdleTimeout > 0)
}

// inert ends a supervisor that never runs (invalid name, or created after
// Shutdown): every request answers errClosed.
func (s *Supervisor) inert(reason string) {
	s.ls.lastError = reason
	s.publish()
	s.subMu.Lock()
	s.subEnd = true
	s.subMu.Unlock()
	close(s.done)
}

// boot starts the loop, with a recorded child of a previous run to adopt
// or to stop (mode).
func (s *Supervisor) boot(old *child, mode adoptMode) {
	ls := &s.ls
	if old != nil {
		ls.gen++
		old.gen = ls.gen
		ls.proc = old
		s.watch(old)
		switch mode {
		case adoptRunning:
			ls.desired = true
			ls.phase = PhaseRunning
			ls.since = time.Now()
			s.ready.Store(&old.addr)
		case adoptStarting:
			ls.desired = true
			ls.phase = PhaseStarting
			ls.since = time.Now()
		}
		if mode != adoptStop {
			s.m.log.Info().Str("instance", s.name).Int("pid", old.pid).Str("phase", string(ls.phase)).Msg("adopted")
		}
	}
	s.publish()
	s.m.wg.Go(func() { s.loop(mode) })
}

func (s *Supervisor) loop(mode adoptMode) {
	ls := &s.ls
	ls.backoffT = s.newTimer()
	ls.killT = s.newTimer()
	ls.idleT = s.newTimer()
	ls.stableT = s.newTimer()
	ls.liveT = s.newTimer()
	// The log size check ticks only while a child runs, so a stopped or
	// sleeping instance costs nothing between events.
	ls.logT = time.NewTicker(s.m.opts.LogCheckInterval)
	ls.logT.Stop()
	logTicking := false
	defer s.end()
	switch mode {
	case adoptRunning:
		s.enterRunning()
	case adoptStarting:
		s.awaitHealth(ls.proc)
	case adoptStop:
		s.stopChild(stopStale, "recorded child runs another config")
	}
	for !(ls.closing && ls.proc == nil) {
		if running := ls.proc != nil; running != logTicking {
			if running {
				ls.logT.Reset(s.m.opts.LogCheckInterval)
			} else {
				ls.logT.Stop()
			}
			logTicking = running
		}
		select {
		case r := <-s.reqs:
			s.handle(r)
		case ev := <-s.events:
			switch ev := ev.(type) {
			case exited:
				s.onExit(ev)
			case healthResult:
				s.onHealth(ev)
			case liveResult:
				s.onLive(ev)
			}
		case <-s.drained:
			if ls.draining && s.inflight.Load() == 0 {
				s.stopChild(stopRestart, s.drainDone())
			}
		case <-ls.backoffT.C:
			if ls.phase == PhaseBackoff {
				s.startChild()
			}
		case <-ls.killT.C:
			s.onKillTimer()
		case <-ls.idleT.C:
			s.onIdleTimer()
		case <-ls.liveT.C:
			s.probeLive()
		case <-ls.stableT.C:
			if ls.phase == PhaseRunning && ls.restarts > 0 {
				ls.restarts = 0
			}
		case <-ls.logT.C:
			if ls.proc != nil {
				_, _ = rotateLive(s.logPath, s.m.opts.LogMaxBytes, s.m.opts.LogBackups)
			}
		}
		s.publish()
	}
}

// stopProbe stops liveness probes: the next, and the one under way.
func (s *Supervisor) stopProbe() {
	s.ls.liveT.Stop()
	if s.ls.liveCancel != nil {
		s.ls.liveCancel()
		s.ls.liveCancel = nil
	}
}

func (s *Supervisor) newTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	s.ls.timers = append(s.ls.timers, t)
	return t
}

// end runs when the loop ends: answer everyone, close subscriptions.
func (s *Supervisor) end() {
	ls := &s.ls
	for _, t := range ls.timers {
		t.Stop()
	}
	ls.logT.Stop()
	s.stopProbe()
	s.failWaiters(ErrStopped)
	s.replyGone(nil)
	s.ready.Store(nil)
	s.publish()
	close(s.done)
	s.subMu.Lock()
	s.subEnd = true
	for ch := range s.subs {
		delete(s.subs, ch)
		close(ch)
	}
	s.subMu.Unlock()
}

// setPhase records a transition and tells subscribers, OnEvent and the log.
func (s *Supervisor) setPhase(to Phase, reason string) {
	ls := &s.ls
	from := ls.phase
	if from == to {
		return
	}
	ls.phase = to
	ls.since = time.Now()
	ev := Event{Name: s.name, From: from, To: to, At: ls.since, Reason: reason}
	s.publish()
	lg := s.m.log.Info()
	if to == PhaseFailed || to == PhaseBackoff {
		lg = s.m.log.Warn()
	}
	lg.Str("instance", s.name).Str("from", string(from)).Str("to", string(to)).Str("reason", reason).Msg("phase")
	if s.m.opts.OnEvent != nil {
		s.m.opts.OnEvent(ev)
	}
	s.subMu.Lock()
	for ch := range s.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber loses events rather than stalling the loop
		}
	}
	s.subMu.Unlock()
}

// publish stores the status readers see.
func (s *Supervisor) publish() {
	ls := &s.ls
	st := &Status{
		Name:      s.name,
		Phase:     ls.phase,
		Since:     ls.since,
		Hash:      ls.cfg.Hash,
		Restarts:  ls.restarts,
		LastError: ls.lastError,
	}
	if p := ls.proc; p != nil {
		st.PID = p.pid
		st.Port = p.port
		st.StartedAt = p.healthyAt
		st.Adopted = p.adopted
		if ls.phase == PhaseRunning || ls.phase == PhaseStopping {
			st.Hash = p.hash
		}
	}
	s.status.Store(st)
}

func (s *Supervisor) stopTimeout() time.Duration {
	switch d := s.ls.cfg.StopTimeout; {
	case d > 0:
		return d
	case d < 0:
		return 0 // KillAtOnce
	}
	return DefaultStopTimeout
}

func (s *Supervisor) startupTimeout() time.Duration {
	if d := s.ls.cfg.StartupTimeout; d > 0 {
		return d
	}
	return DefaultStartupTimeout
}

// errClosed is returned by requests to a supervisor that has ended.
var errClosed = fmt.Errorf("%w: supervisor closed", ErrStopped)

var errNameChange = errors.New("update: config name differs from the supervisor's")
