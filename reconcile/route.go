package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"llamactl/runtime"
)

// route is where a model name leads. A route lives as long as its
// instance's entry; the supervisor is set in place when the first pass
// creates it, so the route map is rebuilt only when names or aliases
// change.
type route struct {
	name string
	sup  atomic.Pointer[supRef] // nil until the first pass created the supervisor
}

type supRef struct{ supervisor }

// setSupLocked records the supervisor of name (nil: removed). Caller holds
// l.mu.
func (l *Loop) setSupLocked(name string, sup supervisor) {
	if sup == nil {
		delete(l.sups, name)
	} else {
		l.sups[name] = sup
	}
	if r := l.slots[name]; r != nil {
		if sup == nil {
			r.sup.Store(nil)
		} else {
			r.sup.Store(&supRef{sup})
		}
	}
}

// rebuildRoutesLocked rebuilds the model map read by Acquire: every
// instance by name, then every alias not taken by a name (when two
// instances share an alias, the first by name wins). Caller holds l.mu.
func (l *Loop) rebuildRoutesLocked() {
	slots := make(map[string]*route, len(l.entries))
	m := make(map[string]*route, len(l.entries))
	names := make([]string, 0, len(l.entries))
	for name := range l.entries {
		r := l.slots[name]
		if r == nil {
			r = &route{name: name}
			if sup := l.sups[name]; sup != nil {
				r.sup.Store(&supRef{sup})
			}
		}
		slots[name], m[name] = r, r
		names = append(names, name)
	}
	l.slots = slots
	slices.Sort(names)
	shadowed := map[string]string{}
	for _, name := range names {
		e := l.entries[name]
		if e.spec == nil {
			continue
		}
		var msgs []string
		for _, alias := range e.spec.Aliases() {
			if other, taken := m[alias]; !taken {
				m[alias] = m[name]
			} else if other.name != name {
				msgs = append(msgs, fmt.Sprintf("alias %q already routes to instance %q; requests for it do not reach this instance", alias, other.name))
			}
		}
		if len(msgs) > 0 {
			shadowed[name] = strings.Join(msgs, "; ")
		}
	}
	l.aliasShadowed = shadowed
	l.routes.Store(&m)
}

// Acquire maps an OpenAI model name (instance name or alias) to its
// instance, wakes it if it sleeps and waits until it is healthy (bounded by
// ctx). It returns the instance name, the upstream address (host:port) and
// a release func to call when the request ends. Errors: ErrNotFound for an
// unknown model; runtime.ErrStopped / runtime.ErrFailed / runtime.ErrNotReady.
//
// The lookup is one atomic load and one map read; the map is rebuilt when
// the desired state or the set of supervisors changes.
func (l *Loop) Acquire(ctx context.Context, model string) (name, addr string, release func(), err error) {
	r, ok := (*l.routes.Load())[model]
	if !ok {
		return "", "", nil, fmt.Errorf("acquire %q: %w", model, ErrNotFound)
	}
	sup := r.sup.Load()
	if sup == nil {
		return r.name, "", nil, fmt.Errorf("acquire %q: instance %s has no process yet: %w", model, r.name, runtime.ErrNotReady)
	}
	addr, release, err = sup.EnsureReady(ctx)
	if err != nil {
		return r.name, "", nil, fmt.Errorf("acquire %q: %w", model, err)
	}
	return r.name, addr, release, nil
}

// AcquireReady is Acquire for a model whose instance is ready now: it
// neither waits nor takes a context, so the proxy's common case costs
// no deadline. ok is false otherwise, and Acquire then wakes, waits for
// or explains the instance.
func (l *Loop) AcquireReady(model string) (name, addr string, release func(), ok bool) {
	r, found := (*l.routes.Load())[model]
	if !found {
		return "", "", nil, false
	}
	sup := r.sup.Load()
	if sup == nil {
		return "", "", nil, false
	}
	if addr, release, ok = sup.TryReady(); !ok {
		return "", "", nil, false
	}
	return r.name, addr, release, true
}

// Logs returns the last n lines of the instance's log (n <= 0: all). An
// instance that never had a process has an empty log.
func (l *Loop) Logs(name string, n int) ([]byte, error) {
	l.mu.RLock()
	_, known := l.entries[name]
	sup := l.sups[name]
	l.mu.RUnlock()
	if sup == nil {
		if s, ok := l.procs.Get(name); ok {
			sup = s
		} else if known {
			return nil, nil
		} else {
			return nil, fmt.Errorf("logs of %s: %w", name, ErrNotFound)
		}
	}
	b, err := sup.Tail(n)
	if err != nil {
		return nil, fmt.Errorf("logs of %s: %w", name, err)
	}
	return b, nil
}
