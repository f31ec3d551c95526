package httpapi

import (
	"context"

	"llamactl/reconcile"
	"llamactl/spec"
)

// Fleet is what the HTTP layer needs from the owner of instance state.
// *reconcile.Loop satisfies it; httpapi keeps no instance state itself.
//
// Errors are matched with errors.Is: reconcile.ErrNotFound, ErrExists,
// ErrReadOnly, ErrPreconditionFailed, ErrConflict, spec.ErrInvalid (an
// spec.ErrorList) and, from Acquire, runtime.ErrStopped, ErrFailed and
// ErrNotReady.
type Fleet interface {
	List() []reconcile.InstanceStatus
	Get(name string) (reconcile.InstanceStatus, error)
	Status() reconcile.DaemonStatus
	Create(name string, s *spec.Spec, f spec.Format) (reconcile.InstanceStatus, error)
	Update(name string, s *spec.Spec, ifMatch string) (reconcile.InstanceStatus, error)
	Delete(name string, ifMatch string) error
	SetState(ctx context.Context, name, state string) (reconcile.InstanceStatus, error)
	Restart(ctx context.Context, name string) (reconcile.InstanceStatus, error)
	Acquire(ctx context.Context, model string) (name, addr string, release func(), err error)
	Logs(name string, n int) ([]byte, error)
}

var _ Fleet = (*reconcile.Loop)(nil)

// readyFleet is a Fleet that can hand out a ready instance without a
// context (reconcile.Loop can): the proxy asks it first, and calls
// Acquire only when it answers no.
type readyFleet interface {
	AcquireReady(model string) (name, addr string, release func(), ok bool)
}

var _ readyFleet = (*reconcile.Loop)(nil)
