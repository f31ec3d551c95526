package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Manager owns what supervisors share: the port leases, the data
// directory and the records of running children. Its methods are safe for
// concurrent use.
//
// Layout of DataDir: logs/<name>.log (+ .1 .. .N backups) and
// run/<name>.json, one record per live child. Children run with DataDir
// as their working directory.
type Manager struct {
	opts   ManagerOptions
	logDir string
	runDir string
	ports  *ports
	log    zerolog.Logger
	wg     sync.WaitGroup // every goroutine of every supervisor

	mu      sync.Mutex
	sups    map[string]*Supervisor
	records map[string]record // records of a previous run not yet claimed
	closed  bool
}

// NewManager prepares the data directory and reads the records of a
// previous run (they are adopted or cleaned up by Supervise/ReapStale).
// Unreadable records are removed and logged as warnings; they are not an
// error (nothing can be done with them).
func NewManager(opts ManagerOptions) (*Manager, error) {
	if opts.DataDir == "" {
		return nil, errors.New("create manager: DataDir is empty")
	}
	if opts.PortMin < 0 || opts.PortMax > 65535 || opts.PortMax < opts.PortMin {
		return nil, fmt.Errorf("create manager: bad port range %d-%d", opts.PortMin, opts.PortMax)
	}
	dd, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	opts.DataDir = dd
	if opts.LogMaxBytes <= 0 {
		opts.LogMaxBytes = DefaultLogMaxBytes
	}
	switch {
	case opts.LogBackups == 0:
		opts.LogBackups = DefaultLogBackups
	case opts.LogBackups < 0:
		opts.LogBackups = 0
	}
	if opts.MaxRestartDelay <= 0 {
		opts.MaxRestartDelay = DefaultMaxRestartDelay
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = DefaultStableAfter
	}
	if opts.LogCheckInterval <= 0 {
		opts.LogCheckInterval = DefaultLogCheckInterval
	}
	if opts.AdoptProbeTimeout <= 0 {
		opts.AdoptProbeTimeout = time.Second
	}
	if opts.LivenessInterval == 0 {
		opts.LivenessInterval = DefaultLivenessInterval
	}
	if opts.LivenessTimeout <= 0 {
		opts.LivenessTimeout = DefaultLivenessTimeout
	}
	if opts.LivenessFailures <= 0 {
		opts.LivenessFailures = DefaultLivenessFailures
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	m := &Manager{
		opts:   opts,
		logDir: filepath.Join(dd, "logs"),
		runDir: filepath.Join(dd, "run"),
		ports:  newPorts(opts.PortMin, opts.PortMax),
		log:    zerolog.Nop(),
		sups:   map[string]*Supervisor{},
	}
	if opts.Logger != nil {
		m.log = *opts.Logger
	}
	for _, d := range []string{m.logDir, m.runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create manager: %w", err)
		}
	}
	m.records, err = readRecords(m.runDir)
	for name, r := range m.records {
		if r.Leased {
			m.ports.claim(name, r.Port)
		}
	}
	if err != nil {
		m.log.Warn().Err(err).Msg("dropped unreadable records of a previous run")
	}
	return m, nil
}

// Supervise returns the supervisor for cfg.Name, creating it (stopped) if
// needed; an existing supervisor keeps its config (use Update). A child
// recorded by a previous run with the same name and hash that is alive and
// ours is adopted instead of started anew: phase running (Adopted) when
// /health answers 200, else starting (it may still be loading its model;
// StartupTimeout counts from now). An adopted instance is desired-running;
// call Stop if it should not run. A recorded child that is ours but has
// another hash is stopped by the new supervisor (Start then starts the new
// config); a record whose pid is gone or now belongs to an unrelated
// process is dropped.
func (m *Manager) Supervise(cfg Config) *Supervisor {
	m.mu.Lock()
	if s, ok := m.sups[cfg.Name]; ok {
		m.mu.Unlock()
		return s
	}
	rec, hasRec := m.records[cfg.Name]
	hasRec = hasRec && validName(cfg.Name)
	delete(m.records, cfg.Name)
	closed := m.closed
	m.mu.Unlock()

	var old *child // a recorded child to adopt or to stop
	mode := adoptNone
	if hasRec {
		old, mode = m.claim(rec, cfg)
	}
	s := newSupervisor(m, cfg)
	m.mu.Lock()
	if other, ok := m.sups[cfg.Name]; ok { // lost a race with another Supervise
		m.mu.Unlock()
		if old != nil {
			old.w.close()
			m.mu.Lock()
			m.records[cfg.Name] = rec
			m.mu.Unlock()
		}
		return other
	}
	m.sups[cfg.Name] = s
	closed = closed || m.closed
	m.mu.Unlock()
	if closed || !validName(cfg.Name) {
		if old != nil {
			old.w.close()
		}
		reason := "manager is shut down"
		if !validName(cfg.Name) {
			reason = fmt.Sprintf("invalid instance name %q", cfg.Name)
		}
		s.inert(reason)
		return s
	}
	s.boot(old, mode)
	return s
}

// adoptMode says what a new supervisor does with a recorded child.
type adoptMode int

const (
	adoptNone     adoptMode = iota // no child
	adoptRunning                   // healthy: adopt as running
	adoptStarting                  // not healthy yet: adopt and wait for health
	adoptStop                      // another config: stop it
)

// claim checks a record of a previous run: it returns the child and what
// to do with it, or nil when the record is dropped.
func (m *Manager) claim(rec record, cfg Config) (*child, adoptMode) {
	if !rec.ours() {
		m.dropRecord(rec)
		return nil, adoptNone
	}
	pidfd, err := unix.PidfdOpen(rec.PID, 0)
	if err != nil || !rec.ours() { // recheck: the pid may have been reused before pidfd_open
		if err == nil {
			_ = unix.Close(pidfd)
		}
		m.dropRecord(rec)
		return nil, adoptNone
	}
	w, err := newWatcher(rec.PID, rec.PGID, pidfd, false)
	if err != nil {
		m.dropRecord(rec)
		return nil, adoptNone
	}
	c := &child{
		pid: rec.PID, pgid: rec.PGID, port: rec.Port, leased: rec.Leased, host: rec.Host,
		addr:    net.JoinHostPort(probeHost(rec.Host), strconv.Itoa(rec.Port)),
		started: rec.StartedAt, logOffset: rec.LogOffset,
		hash: rec.Hash, adopted: true, w: w, rec: rec,
	}
	if rec.Leased {
		m.ports.claim(cfg.Name, rec.Port)
	}
	if rec.Hash != cfg.Hash {
		return c, adoptStop
	}
	if len(cfg.Spec) > 0 && !bytes.Equal(rec.Spec, cfg.Spec) {
		c.rec.Spec = cfg.Spec // the same process, described anew
		if err := writeRecord(m.runDir, c.rec); err != nil {
			m.log.Warn().Str("instance", cfg.Name).Err(err).Msg("record child")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.AdoptProbeTimeout)
	defer cancel()
	if ok, _ := probeHealth(ctx, c.addr, m.opts.AdoptProbeTimeout); ok {
		c.healthyAt = time.Now()
		return c, adoptRunning
	}
	return c, adoptStarting
}

// RecordedSpec returns the Config.Spec recorded for name's child by a
// previous run, and the config hash it ran with, while the record is
// unclaimed (no supervisor of name yet) and the child still runs: what
// the child runs, when nothing else can tell (its spec file broken at
// start). ok is false when there is no such record or it holds no spec.
func (m *Manager) RecordedSpec(name string) (spec []byte, hash string, ok bool) {
	m.mu.Lock()
	rec, has := m.records[name]
	m.mu.Unlock()
	if !has || len(rec.Spec) == 0 || !rec.ours() {
		return nil, "", false
	}
	return rec.Spec, rec.Hash, true
}

func (m *Manager) dropRecord(rec record) {
	removeRecord(m.runDir, rec.Name)
	if rec.Leased {
		m.ports.release(rec.Name, rec.Port)
	}
}

// Get returns the supervisor of name, if any.
func (m *Manager) Get(name string) (*Supervisor, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sups[name]
	return s, ok
}

// Supervisors returns every supervisor, sorted by name.
func (m *Manager) Supervisors() []*Supervisor {
	m.mu.Lock()
	out := make([]*Supervisor, 0, len(m.sups))
	for _, s := range m.sups {
		out = append(out, s)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *Supervisor) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out
}

// Remove stops the supervisor of name and forgets it. Without a
// supervisor, a recorded child of a previous run not claimed yet (kept by
// ReapStaleExcept) is stopped instead. Removing an unknown name is not an
// error.
func (m *Manager) Remove(ctx context.Context, name string) error {
	s, ok := m.Get(name)
	if !ok {
		m.mu.Lock()
		rec, hasRec := m.records[name]
		delete(m.records, name)
		m.mu.Unlock()
		if hasRec {
			return m.reap(ctx, rec)
		}
		return nil
	}
	err := s.close(ctx, false)
	m.mu.Lock()
	if m.sups[name] == s {
		delete(m.sups, name)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// StaleRecords lists the names of recorded children not claimed by
// Supervise yet (what ReapStale would act on).
func (m *Manager) StaleRecords() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n := range m.records {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ReapStale stops every recorded child not adopted by now (its record is
// stale or its instance no longer desired) and frees its port. A record
// whose pid now belongs to an unrelated process is dropped, not killed.
// Each child gets DefaultStopTimeout (or until ctx ends) between SIGTERM
// and SIGKILL.
func (m *Manager) ReapStale(ctx context.Context) error {
	return m.ReapStaleExcept(ctx, nil)
}

// ReapStaleExcept is ReapStale leaving alone the records whose name keep
// reports true (nil keeps none): an instance still desired whose spec
// cannot be applied yet (a broken file after a daemon restart) keeps its
// child running. A kept record stays claimable by Supervise (adopted when
// its hash matches); Remove of its name stops it.
func (m *Manager) ReapStaleExcept(ctx context.Context, keep func(name string) bool) error {
	kept := map[string]bool{}
	if keep != nil {
		for _, name := range m.StaleRecords() { // keep runs without m.mu held
			kept[name] = keep(name)
		}
	}
	m.mu.Lock()
	recs := m.records
	m.records = map[string]record{}
	for name, r := range recs {
		if kept[name] {
			m.records[name] = r
			delete(recs, name)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(recs))
	for _, r := range recs {
		wg.Go(func() { errs <- m.reap(ctx, r) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// reap stops the recorded child of r, if it is still ours, and drops
// the record.
func (m *Manager) reap(ctx context.Context, r record) error {
	if r.ours() {
		m.log.Info().Str("instance", r.Name).Int("pid", r.PID).Int("port", r.Port).
			Msg("stopping the recorded child of an instance no longer desired")
		if err := stopForeign(ctx, r.PID, r.PGID, DefaultStopTimeout); err != nil {
			return fmt.Errorf("reap %s (pid %d): %w", r.Name, r.PID, err)
		}
	}
	m.dropRecord(r)
	return nil
}

// stopForeign stops a process group whose leader is not (necessarily) our
// child: SIGTERM, wait up to timeout for the leader to go, SIGKILL.
func stopForeign(ctx context.Context, pid, pgid int, timeout time.Duration) error {
	killGroup(pgid, unix.SIGTERM)
	gone := func() bool {
		// Our own child (an in-process restart) is gone only once reaped:
		// one seen exiting but not yet a zombie would stay a zombie.
		switch wpid, err := unix.Wait4(pid, nil, unix.WNOHANG, nil); {
		case err == nil && wpid == pid:
			return true
		case err == nil:
			return false
		}
		return !pidAlive(pid)
	}
	deadline := time.Now().Add(timeout)
	for !gone() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			killGroup(pgid, unix.SIGKILL)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 200 && !gone(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	killGroup(pgid, unix.SIGKILL) // what is left of the group
	if !gone() {
		return errors.New("stop: process still alive after SIGKILL")
	}
	return nil
}

// Shutdown stops every child (or detaches them, with KeepOnShutdown:
// children keep running and keep their records for the next daemon) and
// ends all supervisor goroutines. Supervise after Shutdown returns an
// inert supervisor.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	sups := make([]*Supervisor, 0, len(m.sups))
	for _, s := range m.sups {
		sups = append(sups, s)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(sups))
	for i, s := range sups {
		wg.Go(func() { errs[i] = s.close(ctx, m.opts.KeepOnShutdown) })
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("shutdown: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// validName is the instance name rule: 1-64 of [A-Za-z0-9._-], not
// starting with '.' or '-' (names become file names).
func validName(name string) bool {
	if len(name) == 0 || len(name) > 64 || name[0] == '.' || name[0] == '-' {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}
