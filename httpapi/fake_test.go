package httpapi

import (
	"context"
	"sync"
	"sync/atomic"

	"llamactl/reconcile"
	"llamactl/spec"
)

// fakeFleet is a Fleet whose methods are function fields; a nil field
// answers ErrNotFound (or an empty list).
type fakeFleet struct {
	ListFn     func() []reconcile.InstanceStatus
	GetFn      func(name string) (reconcile.InstanceStatus, error)
	CreateFn   func(name string, s *spec.Spec, f spec.Format) (reconcile.InstanceStatus, error)
	UpdateFn   func(name string, s *spec.Spec, ifMatch string) (reconcile.InstanceStatus, error)
	DeleteFn   func(name string, ifMatch string) error
	SetStateFn func(ctx context.Context, name, state string) (reconcile.InstanceStatus, error)
	RestartFn  func(ctx context.Context, name string) (reconcile.InstanceStatus, error)
	AcquireFn  func(ctx context.Context, model string) (name, addr string, release func(), err error)
	LogsFn     func(name string, n int) ([]byte, error)
	StatusFn   func() reconcile.DaemonStatus
}

var _ Fleet = (*fakeFleet)(nil)

func (f *fakeFleet) List() []reconcile.InstanceStatus {
	if f.ListFn == nil {
		return nil
	}
	return f.ListFn()
}

func (f *fakeFleet) Get(name string) (reconcile.InstanceStatus, error) {
	if f.GetFn == nil {
		return reconcile.InstanceStatus{}, reconcile.ErrNotFound
	}
	return f.GetFn(name)
}

func (f *fakeFleet) Status() reconcile.DaemonStatus {
	if f.StatusFn == nil {
		return reconcile.DaemonStatus{}
	}
	return f.StatusFn()
}

func (f *fakeFleet) Create(name string, s *spec.Spec, fm spec.Format) (reconcile.InstanceStatus, error) {
	if f.CreateFn == nil {
		return reconcile.InstanceStatus{}, reconcile.ErrReadOnly
	}
	return f.CreateFn(name, s, fm)
}

func (f *fakeFleet) Update(name string, s *spec.Spec, ifMatch string) (reconcile.InstanceStatus, error) {
	if f.UpdateFn == nil {
		return reconcile.InstanceStatus{}, reconcile.ErrNotFound
	}
	return f.UpdateFn(name, s, ifMatch)
}

func (f *fakeFleet) Delete(name string, ifMatch string) error {
	if f.DeleteFn == nil {
		return reconcile.ErrNotFound
	}
	return f.DeleteFn(name, ifMatch)
}

func (f *fakeFleet) SetState(ctx context.Context, name, state string) (reconcile.InstanceStatus, error) {
	if f.SetStateFn == nil {
		return reconcile.InstanceStatus{}, reconcile.ErrNotFound
	}
	return f.SetStateFn(ctx, name, state)
}

func (f *fakeFleet) Restart(ctx context.Context, name string) (reconcile.InstanceStatus, error) {
	if f.RestartFn == nil {
		return reconcile.InstanceStatus{}, reconcile.ErrNotFound
	}
	return f.RestartFn(ctx, name)
}

func (f *fakeFleet) Acquire(ctx context.Context, model string) (string, string, func(), error) {
	if f.AcquireFn == nil {
		return "", "", nil, reconcile.ErrNotFound
	}
	return f.AcquireFn(ctx, model)
}

func (f *fakeFleet) Logs(name string, n int) ([]byte, error) {
	if f.LogsFn == nil {
		return nil, reconcile.ErrNotFound
	}
	return f.LogsFn(name, n)
}

// routes is an Acquire that maps models to fixed upstream addresses and
// counts outstanding releases, so tests can check every request released.
type routes struct {
	addrs    map[string]string // model -> addr
	inFlight atomic.Int64
	mu       sync.Mutex
	acquired []string
}

func (r *routes) acquire(_ context.Context, model string) (string, string, func(), error) {
	addr, ok := r.addrs[model]
	if !ok {
		return "", "", nil, reconcile.ErrNotFound
	}
	r.mu.Lock()
	r.acquired = append(r.acquired, model)
	r.mu.Unlock()
	r.inFlight.Add(1)
	var once sync.Once
	return model, addr, func() { once.Do(func() { r.inFlight.Add(-1) }) }, nil
}
