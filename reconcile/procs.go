package reconcile

import (
	"context"

	"llamactl/runtime"
)

// processes is what the loop needs of runtime.Manager. The loop depends on
// this small interface so that its logic can be tested with a plain fake;
// managerProcs adapts the real manager.
type processes interface {
	// Supervise returns the supervisor of cfg.Name, creating it stopped.
	Supervise(cfg runtime.Config) supervisor
	// Get returns the supervisor of name, if any.
	Get(name string) (supervisor, bool)
	// Remove stops the supervisor of name and forgets it.
	Remove(ctx context.Context, name string) error
	// RecordedSpec is runtime.Manager.RecordedSpec: the Config.Spec and
	// hash a child of a previous run was recorded with, while unclaimed.
	RecordedSpec(name string) (spec []byte, hash string, ok bool)
}

// supervisor is what the loop needs of runtime.Supervisor.
type supervisor interface {
	Update(ctx context.Context, cfg runtime.Config) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Restart(ctx context.Context) error
	EnsureReady(ctx context.Context) (addr string, release func(), err error)
	TryReady() (addr string, release func(), ok bool)
	Snapshot() runtime.Status
	Tail(n int) ([]byte, error)
}

var (
	_ supervisor = (*runtime.Supervisor)(nil)
	_ processes  = managerProcs{}
)

// managerProcs adapts *runtime.Manager to processes.
type managerProcs struct{ m *runtime.Manager }

func (p managerProcs) Supervise(cfg runtime.Config) supervisor { return p.m.Supervise(cfg) }

func (p managerProcs) Get(name string) (supervisor, bool) {
	s, ok := p.m.Get(name)
	if !ok || s == nil {
		return nil, false
	}
	return s, true
}

func (p managerProcs) Remove(ctx context.Context, name string) error { return p.m.Remove(ctx, name) }

func (p managerProcs) RecordedSpec(name string) ([]byte, string, bool) { return p.m.RecordedSpec(name) }
