package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"llamactl/runtime"
	"llamactl/spec"
)

// entry is the desired state of one instance and what the loop last did
// about it. Every field is guarded by Loop.mu.
type entry struct {
	name     string
	created  time.Time
	file     string // relative to the specs dir
	path     string // resolved absolute path of the file as last read
	format   spec.Format
	etag     string
	revision string
	spec     *spec.Spec // last good spec; nil if never valid; never mutated
	hash     string     // spec.Hash of spec
	err      error      // current file error: decode, validation, read or conflict
	conflict []string   // files claiming the name, when more than one
	gen      uint64     // bumped on every change of the desired state

	// Set by reconcile passes.
	appliedGen     uint64          // gen of the last successful pass
	passGen        uint64          // gen of the last pass, successful or not
	applied        *runtime.Config // config last given to the supervisor
	appliedRunning bool            // desired state last given to the supervisor
	passErr        error           // error of the last pass, nil after success
	terminal       bool            // passErr cannot be fixed by retrying
	specValid      Condition
	stalled        Condition
}

// apply merges one scan into the desired state and returns the names
// whose desired state changed. A failed scan changes nothing (retry is
// then set). An empty read while instances exist never prunes the fleet
// (DESIGN: an empty or vanished directory never prunes everything): it is
// a daemon error until files appear again; an instance can still be
// removed by an explicit API delete.
func (l *Loop) apply(res scanResult) (changed []string, retry bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if res.err != nil {
		l.dirErr = res.err.Error()
		return nil, true
	}
	if len(res.files) == 0 && len(l.entries) > 0 {
		l.dirErr = fmt.Sprintf("specs dir %s has no spec files; keeping all %d instances (an empty directory never prunes the fleet: delete them through the API)", l.opts.SpecsDir, len(l.entries))
		return nil, false
	}
	l.dirErr = ""
	l.revision = res.revision
	l.lastSync = now
	for stem, files := range res.files {
		e := l.entries[stem]
		if e == nil {
			e = &entry{name: stem, created: files[0].mtime}
			l.entries[stem] = e
		}
		e.revision = res.revision
		if len(files) > 1 {
			rels := make([]string, len(files))
			for i, f := range files {
				rels[i] = f.rel
			}
			slices.Sort(rels)
			if !slices.Equal(rels, e.conflict) {
				e.conflict = rels
				e.err = fmt.Errorf("%w: %s", ErrConflict, strings.Join(rels, ", "))
				setCondition(&e.specValid, "SpecValid", "False", "Conflict", e.err.Error(), now)
				e.gen++
				changed = append(changed, stem)
			}
			continue
		}
		f := files[0]
		if e.conflict == nil && e.gen > 0 && e.etag == f.etag && e.file == f.rel && e.format == f.format && (f.err == nil) == (e.err == nil) {
			e.path = f.path
			continue
		}
		l.setFile(e, f)
		changed = append(changed, stem)
	}
	for name := range l.entries {
		if _, ok := res.files[name]; !ok {
			delete(l.entries, name)
			changed = append(changed, name)
		}
	}
	if len(changed) > 0 {
		l.rebuildRoutesLocked()
	}
	return changed, false
}

// setFile records f as the current file of e. A file that does not parse
// keeps the last good spec. Caller holds l.mu.
func (l *Loop) setFile(e *entry, f *scanFile) {
	e.conflict = nil
	e.file, e.path, e.format, e.etag = f.rel, f.path, f.format, f.etag
	recovered := false
	if f.err != nil {
		e.err = f.err
		if e.spec == nil {
			e.spec, e.hash, recovered = l.recoveredSpec(e.name)
		}
	} else {
		e.spec, e.hash, e.err = f.spec, f.hash, nil
	}
	e.gen++
	now := time.Now()
	if e.err != nil {
		reason, msg := "InvalidSpec", e.err.Error()
		switch {
		case recovered:
			reason, msg = "InvalidSpecRecordedKept", msg+" (running the spec its process was started with, from the previous run's record)"
		case e.spec != nil:
			reason = "InvalidSpecLastGoodKept"
		}
		setCondition(&e.specValid, "SpecValid", "False", reason, msg, now)
	} else {
		setCondition(&e.specValid, "SpecValid", "True", "Valid", "", now)
	}
}

// recoveredSpec is the last good spec of an instance whose file is broken
// when the daemon starts: the one its still-running child of the previous
// run was recorded with, and its hash for this daemon's binary and flags.
// A spec the binary's flags no longer allow is not recovered.
func (l *Loop) recoveredSpec(name string) (*spec.Spec, string, bool) {
	if l.procs == nil {
		return nil, "", false
	}
	b, _, ok := l.procs.RecordedSpec(name)
	if !ok {
		return nil, "", false
	}
	sp, err := spec.Decode(b, spec.JSON, name+" (recorded)")
	if err != nil {
		l.log.Warn().Str("instance", name).Err(err).Msg("recorded spec of the previous run does not decode")
		return nil, "", false
	}
	if err := sp.Validate(name, l.opts.Flags); err != nil {
		l.log.Warn().Str("instance", name).Err(err).Msg("recorded spec of the previous run is no longer valid")
		return nil, "", false
	}
	return sp, sp.Hash(l.opts.Binary, l.opts.Flags), true
}

// setCondition updates c, moving its transition time only when the
// status changes.
func setCondition(c *Condition, typ, status, reason, msg string, now time.Time) {
	if c.Status != status || c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = now
	}
	c.Type, c.Status, c.Reason, c.Message = typ, status, reason, msg
}
