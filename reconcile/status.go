package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"llamactl/runtime"
	"llamactl/spec"
)

// List returns every instance, sorted by name.
func (l *Loop) List() []InstanceStatus {
	l.mu.RLock()
	out := make([]InstanceStatus, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, l.statusLocked(e))
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b InstanceStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Get returns one instance.
func (l *Loop) Get(name string) (InstanceStatus, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e := l.entries[name]
	if e == nil {
		return InstanceStatus{}, fmt.Errorf("get %s: %w", name, ErrNotFound)
	}
	return l.statusLocked(e), nil
}

// Status returns the daemon-level status.
func (l *Loop) Status() DaemonStatus {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return DaemonStatus{
		SpecsDir:  l.dir,
		Revision:  l.revision,
		ReadOnly:  l.readOnly,
		Error:     l.dirErr,
		LastSync:  l.lastSync,
		Instances: len(l.entries),
	}
}

// statusLocked builds the status of e. Caller holds l.mu (read).
func (l *Loop) statusLocked(e *entry) InstanceStatus {
	st := InstanceStatus{
		Name:        e.name,
		Created:     e.created,
		File:        e.file,
		Format:      e.format,
		ETag:        e.etag,
		Revision:    e.revision,
		DesiredHash: e.hash,
		Runtime:     runtime.Status{Name: e.name, Phase: runtime.PhaseStopped},
	}
	if e.spec != nil {
		st.Spec = e.spec.Clone()
		st.Desired = spec.StateRunning
		if e.spec.State == spec.StateStopped {
			st.Desired = spec.StateStopped
		}
	}
	if e.err != nil {
		st.Error = e.err.Error()
	}
	if sup := l.sups[e.name]; sup != nil {
		st.Runtime = sup.Snapshot()
	}
	st.ObservedHash = st.Runtime.Hash
	st.Sync = "out_of_sync"
	if e.spec != nil && e.err == nil && e.appliedGen == e.gen && e.passErr == nil && st.ObservedHash == e.hash {
		st.Sync = "synced"
	}

	ready := Condition{Type: "Ready", Status: "False", Reason: string(st.Runtime.Phase), Message: st.Runtime.LastError, LastTransitionTime: st.Runtime.Since}
	if st.Runtime.Phase == runtime.PhaseRunning {
		ready.Status, ready.Reason = "True", "Healthy"
	}
	if ready.Reason == "" {
		ready.Reason = "NoProcess"
	}
	if ready.LastTransitionTime.IsZero() {
		ready.LastTransitionTime = e.created // no supervisor yet: not ready since the entry appeared
	}
	stalled := e.stalled
	if stalled.Type == "" {
		stalled = Condition{Type: "Stalled", Status: "Unknown", Reason: "Pending", LastTransitionTime: e.created}
	}
	if st.Runtime.Phase == runtime.PhaseFailed && stalled.Status != "True" {
		stalled = Condition{Type: "Stalled", Status: "True", Reason: "RestartBudgetExhausted", Message: st.Runtime.LastError, LastTransitionTime: st.Runtime.Since}
	}
	st.Conditions = []Condition{e.specValid, ready, stalled}
	if msg, ok := l.aliasShadowed[e.name]; ok {
		st.Conditions = append(st.Conditions, Condition{Type: "AliasConflict", Status: "True", Reason: "AliasTaken", Message: msg, LastTransitionTime: e.created})
	}
	return st
}
