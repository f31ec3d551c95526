package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"llamactl/runtime"
	"llamactl/spec"
)

// reconcile is one level-triggered pass for name: it reads the desired
// state and the supervisor's and does the least that moves the second to
// the first (start, stop, update, remove). It returns the desired-state
// generation it acted on. Errors wrapping spec.ErrInvalid are terminal.
// It logs to zerolog.Ctx(ctx), which carries the instance and pass id.
func (l *Loop) reconcile(ctx context.Context, name string) (gen uint64, err error) {
	log := zerolog.Ctx(ctx)
	l.mu.RLock()
	e := l.entries[name]
	var (
		sp             *spec.Spec
		hash           string
		applied        *runtime.Config
		appliedRunning bool
	)
	if e != nil {
		gen, sp, hash, applied, appliedRunning = e.gen, e.spec, e.hash, e.applied, e.appliedRunning
	}
	sup, exists := l.sups[name]
	l.mu.RUnlock()
	if !exists {
		if sup, exists = l.procs.Get(name); exists {
			l.mu.Lock()
			l.setSupLocked(name, sup)
			l.mu.Unlock()
		}
	}

	if e == nil {
		if !exists {
			// A child of a previous run kept for this name (its file was
			// broken at start) goes with the file.
			if err := l.procs.Remove(ctx, name); err != nil {
				return gen, fmt.Errorf("remove %s: %w", name, err)
			}
			return gen, nil
		}
		log.Info().Msg("stopping and removing deleted instance")
		return gen, l.remove(ctx, name)
	}
	if sp == nil {
		// Never valid: nothing to run, the file error is on the status. A
		// process left by an earlier file of this name goes.
		if exists {
			return gen, l.remove(ctx, name)
		}
		return gen, nil
	}
	cfg, err := l.config(name, sp, hash)
	if err != nil {
		return gen, err
	}
	running := sp.State != spec.StateStopped

	if !exists {
		sup = l.procs.Supervise(cfg)
		l.mu.Lock()
		l.setSupLocked(name, sup)
		l.mu.Unlock()
		switch {
		case running:
			log.Info().Str("hash", cfg.Hash).Msg("starting instance")
			if err := sup.Start(ctx); err != nil {
				return gen, fmt.Errorf("start %s: %w", name, err)
			}
		case sup.Snapshot().Phase != runtime.PhaseStopped:
			// An adopted child of an instance now desired stopped.
			if err := sup.Stop(ctx); err != nil {
				return gen, fmt.Errorf("stop %s: %w", name, err)
			}
		}
		l.recordApplied(name, cfg, running)
		return gen, nil
	}

	snap := sup.Snapshot()
	if !running && snap.Phase != runtime.PhaseStopped {
		log.Info().Msg("stopping instance")
		if err := sup.Stop(ctx); err != nil {
			return gen, fmt.Errorf("stop %s: %w", name, err)
		}
	}
	hashChanged := snap.Hash != cfg.Hash
	configChanged := applied == nil || !sameConfig(*applied, cfg)
	if hashChanged || configChanged {
		if hashChanged {
			log.Info().Str("from", snap.Hash).Str("to", cfg.Hash).Msg("spec changed")
		}
		if err := sup.Update(ctx, cfg); err != nil {
			return gen, fmt.Errorf("update %s: %w", name, err)
		}
	}
	// Start when the desired state turns to running, when the supervisor
	// was not started by this loop, or when a failed instance's spec
	// changed in any field that reaches the supervisor (a larger
	// max_restarts is a reason to try again); never on every pass (a
	// failed instance stays failed).
	if running && (applied == nil || !appliedRunning || ((hashChanged || configChanged) && snap.Phase == runtime.PhaseFailed)) {
		if err := sup.Start(ctx); err != nil {
			return gen, fmt.Errorf("start %s: %w", name, err)
		}
	}
	l.recordApplied(name, cfg, running)
	return gen, nil
}

// remove stops and forgets the process of name.
func (l *Loop) remove(ctx context.Context, name string) error {
	if err := l.procs.Remove(ctx, name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	l.mu.Lock()
	l.setSupLocked(name, nil)
	l.mu.Unlock()
	return nil
}

func (l *Loop) recordApplied(name string, cfg runtime.Config, running bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[name]; e != nil {
		e.applied, e.appliedRunning = &cfg, running
	}
}

// config builds the runtime config of a spec: spec fields override
// Options.Defaults. An error wraps spec.ErrInvalid (terminal).
func (l *Loop) config(name string, sp *spec.Spec, hash string) (runtime.Config, error) {
	args, err := sp.Args(l.opts.Flags)
	if err != nil {
		return runtime.Config{}, fmt.Errorf("build argv of %s: %w", name, err)
	}
	d := l.opts.Defaults
	cfg := runtime.Config{
		Name:           name,
		Binary:         l.opts.Binary,
		Args:           args,
		Env:            maps.Clone(sp.Env),
		Hash:           hash,
		Spec:           recordSpec(sp),
		StopTimeout:    stopTimeout(sp.StopTimeout, d.StopTimeout),
		StartupTimeout: seconds(sp.StartupTimeout, d.StartupTimeout),
		AutoRestart:    sp.AutoRestart == nil || *sp.AutoRestart,
		MaxRestarts:    d.MaxRestarts,
		RestartDelay:   seconds(sp.RestartDelaySeconds, d.RestartDelay),
		OnDemand:       sp.OnDemandStart != nil && *sp.OnDemandStart,
		IdleTimeout:    seconds(sp.IdleTimeout, 0),
	}
	if sp.MaxRestarts != nil {
		cfg.MaxRestarts = *sp.MaxRestarts
	}
	if sp.Host != nil {
		cfg.Host = *sp.Host
	}
	if sp.Port != nil {
		cfg.Port = *sp.Port
	}
	return cfg, nil
}

func seconds(v *int, def time.Duration) time.Duration {
	if v == nil {
		return def
	}
	return time.Duration(*v) * time.Second
}

// recordSpec is the spec as a runtime record keeps it (Config.Spec): JSON,
// read back by recoveredSpec. The desired state is left out: a recorded
// child runs, and start and stop need not rewrite the record.
func recordSpec(sp *spec.Spec) []byte {
	if sp.State != "" {
		sp = sp.Clone()
		sp.State = ""
	}
	b, err := spec.Encode(sp, spec.JSON)
	if err != nil {
		return nil // a spec that decoded encodes; nothing is recorded otherwise
	}
	return b
}

// stopTimeout is seconds for stop_timeout, where an explicit 0 means no
// grace at all: SIGKILL right after SIGTERM.
func stopTimeout(v *int, def time.Duration) time.Duration {
	if v != nil && *v == 0 {
		return runtime.KillAtOnce
	}
	return seconds(v, def)
}

// sameConfig reports whether two configs are equal in every field.
func sameConfig(a, b runtime.Config) bool {
	return a.Name == b.Name && a.Binary == b.Binary && slices.Equal(a.Args, b.Args) &&
		maps.Equal(a.Env, b.Env) && a.Host == b.Host && a.Port == b.Port && a.Hash == b.Hash &&
		a.StopTimeout == b.StopTimeout && a.StartupTimeout == b.StartupTimeout &&
		a.AutoRestart == b.AutoRestart && a.MaxRestarts == b.MaxRestarts &&
		a.RestartDelay == b.RestartDelay && a.OnDemand == b.OnDemand && a.IdleTimeout == b.IdleTimeout &&
		bytes.Equal(a.Spec, b.Spec)
}
