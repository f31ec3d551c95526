package reconcile

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"llamactl/spec"
)

// Loop owns the desired state and the reconcile queue.
//
// Locks: writeMu serialises scans and API writes (so a scan never applies
// content older than a write it raced); mu guards the desired state
// (entries, daemon status, routes' source). Lock order: writeMu, then mu.
// The watcher goroutine started by Run owns the fsnotify watcher and the
// debounce and resync timers.
type Loop struct {
	opts  Options
	log   zerolog.Logger
	procs processes
	q     *queue

	dir      string // SpecsDir, absolute
	link     string // nearest symlink at or above dir; "" when none
	readOnly bool

	writeMu sync.Mutex
	scan    *scanner // guarded by writeMu

	mu      sync.RWMutex
	entries map[string]*entry
	sups    map[string]supervisor // supervisors the loop created
	slots   map[string]*route     // by instance name; see rebuildRoutesLocked
	// aliasShadowed holds, by instance name, why its alias routes elsewhere
	// (another instance has that name or claimed the alias first).
	aliasShadowed map[string]string
	dirErr        string
	revision      string
	lastSync      time.Time
	retryDelay    time.Duration // before re-reading an unreadable directory
	passDone      chan struct{} // closed and replaced after every pass

	routes atomic.Pointer[map[string]*route] // model name or alias -> route

	loaded   chan struct{}
	initial  map[string]struct{} // names of the initial load still waiting for their first pass; guarded by mu
	isLoaded bool                // loaded is closed; guarded by mu
	// synced is like loaded for the first successful read of the
	// directory (the initial load may have found it missing).
	synced    chan struct{}
	syncNames map[string]struct{} // guarded by mu
	isSynced  bool                // synced is closed; guarded by mu
	resyncCh  chan struct{}
	started   atomic.Bool

	// Counters and hooks for tests and benchmarks.
	batches    atomic.Int64      // scans triggered by events or resyncs that changed something
	scans      atomic.Int64      // every scan
	passes     atomic.Uint64     // pass ids for the logs
	fsw        *fsnotify.Watcher // set by Run before the initial load
	beforeSwap func(path string)
}

// New checks opts and fills defaults; it reads nothing yet, Run does the
// initial load.
func New(opts Options) (*Loop, error) {
	if opts.Runtime == nil {
		return nil, errors.New("create reconcile loop: no runtime manager")
	}
	return newLoop(opts, managerProcs{opts.Runtime})
}

func newLoop(opts Options, procs processes) (*Loop, error) {
	if opts.SpecsDir == "" {
		return nil, errors.New("create reconcile loop: no specs dir")
	}
	dir, err := filepath.Abs(opts.SpecsDir)
	if err != nil {
		return nil, fmt.Errorf("create reconcile loop: %w", err)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = 60 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	l := &Loop{
		opts:       opts,
		log:        zerolog.Nop(),
		procs:      procs,
		q:          newQueue(),
		dir:        dir,
		link:       findLink(dir),
		entries:    map[string]*entry{},
		sups:       map[string]supervisor{},
		slots:      map[string]*route{},
		retryDelay: max(time.Second, 2*opts.Debounce),
		passDone:   make(chan struct{}),
		loaded:     make(chan struct{}),
		synced:     make(chan struct{}),
		resyncCh:   make(chan struct{}, 1),
	}
	if opts.Logger != nil {
		l.log = opts.Logger.With().Str("component", "reconcile").Logger()
	}
	l.readOnly = opts.ReadOnly || l.link != ""
	if wt := gitWorkTree(dir); !l.readOnly && wt != "" && !opts.GitWritable {
		l.readOnly = true
		l.log.Info().Str("work_tree", wt).Msg("specs dir is in a git work tree: the API will not write specs (set readonly: false to allow it)")
	}
	l.scan = &scanner{dir: dir, link: l.link, binary: opts.Binary, flags: opts.Flags, cache: map[string]cached{}}
	empty := map[string]*route{}
	l.routes.Store(&empty)
	return l, nil
}

// Run loads the directory, queues every instance, then watches the
// directory and reconciles until ctx ends. Loaded is closed once every
// instance of the initial load has had its first pass. Run returns nil
// when ctx ends; it does not stop the processes (that is
// runtime.Manager.Shutdown's job).
func (l *Loop) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return errors.New("run reconcile loop: already running")
	}
	w, err := newWatcher(l)
	if err != nil {
		return fmt.Errorf("run reconcile loop: %w", err)
	}
	l.fsw = w.fs
	var wg sync.WaitGroup
	for range l.opts.Workers {
		wg.Go(func() { l.worker(ctx) })
	}
	w.run(ctx)
	l.q.ShutDown()
	wg.Wait()
	return nil
}

// Loaded is closed once the initial load has been applied: every instance
// found has had its first reconcile pass, so every child recorded by a
// previous run that is still desired has been adopted (call
// runtime.Manager.ReapStale after it). A first pass that fails counts; it
// is retried with backoff.
func (l *Loop) Loaded() <-chan struct{} { return l.loaded }

// Synced is closed once the first successful read of the directory has
// been applied: every instance it found has had its first pass. It is
// Loaded when the initial read succeeds; when the directory was missing
// or unreadable at start, Loaded closes at once (with nothing desired)
// and Synced waits for a good read. Recorded children of a previous run
// must not be reaped before Synced: until then every one of them may
// belong to a desired instance.
func (l *Loop) Synced() <-chan struct{} { return l.synced }

// markSynced records the names of the first successful read; Synced
// closes when each has had a pass.
func (l *Loop) markSynced(names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.syncNames = make(map[string]struct{}, len(names))
	for _, n := range names {
		l.syncNames[n] = struct{}{}
	}
	l.checkLoadedLocked()
}

// markLoaded records the names of the initial load; Loaded closes when
// each has had a pass.
func (l *Loop) markLoaded(names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.initial = make(map[string]struct{}, len(names))
	for _, n := range names {
		l.initial[n] = struct{}{}
	}
	l.checkLoadedLocked()
}

func (l *Loop) checkLoadedLocked() {
	if !l.isLoaded && l.initial != nil && len(l.initial) == 0 {
		l.isLoaded = true
		close(l.loaded)
	}
	if !l.isSynced && l.syncNames != nil && len(l.syncNames) == 0 {
		l.isSynced = true
		close(l.synced)
	}
}

// Resync queues a full re-read of the directory (SIGHUP).
func (l *Loop) Resync() {
	select {
	case l.resyncCh <- struct{}{}:
	default:
	}
}

// worker takes names off the queue until it shuts down.
func (l *Loop) worker(ctx context.Context) {
	for {
		name, ok := l.q.Get()
		if !ok {
			return
		}
		l.process(ctx, name)
		l.q.Done(name)
	}
}

// process runs one pass for name and records its outcome: success resets
// the backoff, a terminal error waits for the spec to change, any other
// error is retried with backoff.
func (l *Loop) process(ctx context.Context, name string) {
	log := l.log.With().Str("instance", name).Uint64("pass", l.passes.Add(1)).Logger()
	gen, err := l.reconcile(log.WithContext(ctx), name)
	now := time.Now()
	terminal := errors.Is(err, spec.ErrInvalid)
	l.mu.Lock()
	if e := l.entries[name]; e != nil {
		e.passErr, e.terminal = err, terminal
		e.passGen = max(e.passGen, gen)
		switch {
		case err == nil:
			e.appliedGen = max(e.appliedGen, gen)
			setCondition(&e.stalled, "Stalled", "False", "Reconciled", "", now)
		case terminal:
			e.appliedGen = max(e.appliedGen, gen)
			setCondition(&e.stalled, "Stalled", "True", "InvalidSpec", err.Error(), now)
		default:
			setCondition(&e.stalled, "Stalled", "True", "ReconcileError", err.Error(), now)
		}
	}
	close(l.passDone)
	l.passDone = make(chan struct{})
	if l.initial != nil || l.syncNames != nil {
		delete(l.initial, name)
		delete(l.syncNames, name)
		l.checkLoadedLocked()
	}
	l.mu.Unlock()
	switch {
	case err == nil || terminal:
		l.q.Forget(name)
		if err != nil {
			log.Warn().Err(err).Msg("spec cannot be applied; waiting for a change")
		}
	case ctx.Err() != nil:
	default:
		d := l.q.AddRateLimited(name)
		log.Warn().Err(err).Dur("retry_in", d).Msg("reconcile failed")
	}
}
