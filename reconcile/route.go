package reconcile

import (
	"context"
	"fmt"
	"slices"

	"llamactl/runtime"
)

// route is where a model name leads.
type route struct {
	name string
	sup  supervisor // nil until the first pass created the supervisor
}

// rebuildRoutesLocked rebuilds the model map read by Acquire: every
// instance by name, then every alias not taken by a name (when two
// instances share an alias, the first by name wins). Caller holds l.mu.
func (l *Loop) rebuildRoutesLocked() {
	m := make(map[string]route, len(l.entries))
	names := make([]string, 0, len(l.entries))
	for name := range l.entries {
		m[name] = route{name: name, sup: l.sups[name]}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		e := l.entries[name]
		if e.spec == nil || e.spec.Alias == nil || *e.spec.Alias == "" {
			continue
		}
		if _, taken := m[*e.spec.Alias]; !taken {
			m[*e.spec.Alias] = m[name]
		}
	}
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
	if r.sup == nil {
		return r.name, "", nil, fmt.Errorf("acquire %q: instance %s has no process yet: %w", model, r.name, runtime.ErrNotReady)
	}
	addr, release, err = r.sup.EnsureReady(ctx)
	if err != nil {
		return r.name, "", nil, fmt.Errorf("acquire %q: %w", model, err)
	}
	return r.name, addr, release, nil
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
