package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"llamactl/runtime"
	"llamactl/spec"
)

// Writes are atomic file writes under writeMu: a temporary file in the
// file's own folder (a name the watcher ignores), fsync, a compare-and-swap
// against the file's content on disk just before the rename, fsync of the
// folder. The new content is applied to the desired state and the name is
// queued at once; when the watcher later sees the write, the content hash
// equals what is applied and nothing happens.

// Create writes a new spec file (format "" = YAML) at
// <specs_dir>/<name>.<format> and queues it. Errors: ErrReadOnly,
// ErrExists, spec.ErrInvalid (nothing written).
func (l *Loop) Create(name string, s *spec.Spec, f spec.Format) (InstanceStatus, error) {
	if l.readOnly {
		return InstanceStatus{}, fmt.Errorf("create %s: %w", name, ErrReadOnly)
	}
	if f == "" {
		f = spec.YAML
	}
	if err := l.validate(name, s); err != nil {
		return InstanceStatus{}, fmt.Errorf("create %s: %w", name, err)
	}
	data, err := spec.Encode(s, f)
	if err != nil {
		return InstanceStatus{}, fmt.Errorf("create %s: encode: %w", name, err)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.RLock()
	_, exists := l.entries[name]
	l.mu.RUnlock()
	if !exists {
		for _, ext := range []string{".yaml", ".yml", ".toml", ".json"} {
			if _, err := os.Lstat(filepath.Join(l.dir, name+ext)); err == nil {
				exists = true
			}
		}
	}
	if exists {
		return InstanceStatus{}, fmt.Errorf("create %s: %w", name, ErrExists)
	}
	path := filepath.Join(l.dir, name+"."+string(f))
	err = writeAtomic(path, data, 0o644, func(tmp string) error {
		// A hard link fails when the name exists: create-if-absent.
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return ErrExists
			}
			return fmt.Errorf("link %s: %w", path, err)
		}
		return ignoreNotExist(os.Remove(tmp))
	})
	if err != nil {
		return InstanceStatus{}, fmt.Errorf("create %s: %w", name, err)
	}
	l.applyWrite(name, path, data, f)
	return l.Get(name)
}

// Update replaces the spec in its file, keeping the file's format (and,
// for YAML, its comments). A non-empty ifMatch must match the file's
// current ETag (ETagMatches). The write is a compare-and-swap against the
// file's content on disk: if the file changed since it was read, nothing
// is written and the error is ErrPreconditionFailed. Errors: ErrReadOnly,
// ErrNotFound, ErrConflict, ErrPreconditionFailed, spec.ErrInvalid.
func (l *Loop) Update(name string, s *spec.Spec, ifMatch string) (InstanceStatus, error) {
	return l.UpdateFrom(name, s, ifMatch, nil)
}

// UpdateFrom is Update with s completed from the spec the file holds as
// it is written: fill (unless nil) gets that spec, read under the write
// lock so that nothing written in between is lost (the last good spec
// when the file does not parse; nil if there is none), and may set
// fields of s before it is validated. The API keeps secrets it never
// shows this way.
func (l *Loop) UpdateFrom(name string, s *spec.Spec, ifMatch string, fill func(cur, s *spec.Spec)) (InstanceStatus, error) {
	if l.readOnly {
		return InstanceStatus{}, fmt.Errorf("update %s: %w", name, ErrReadOnly)
	}
	if fill == nil {
		if err := l.validate(name, s); err != nil {
			return InstanceStatus{}, fmt.Errorf("update %s: %w", name, err)
		}
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	path, format, cur, err := l.current(name, ifMatch)
	if err != nil {
		return InstanceStatus{}, fmt.Errorf("update %s: %w", name, err)
	}
	if fill != nil {
		if s == nil {
			return InstanceStatus{}, fmt.Errorf("update %s: %w: no spec", name, spec.ErrInvalid)
		}
		old, derr := spec.Decode(cur, format, filepath.Base(path))
		if derr != nil {
			l.mu.RLock()
			if e := l.entries[name]; e != nil {
				old = e.spec
			}
			l.mu.RUnlock()
		}
		fill(old, s)
		if err := l.validate(name, s); err != nil {
			return InstanceStatus{}, fmt.Errorf("update %s: %w", name, err)
		}
	}
	data, err := spec.Update(cur, format, s)
	if err != nil {
		// The file on disk does not parse: replace it whole.
		if data, err = spec.Encode(s, format); err != nil {
			return InstanceStatus{}, fmt.Errorf("update %s: encode: %w", name, err)
		}
	}
	if err := l.swap(path, cur, data); err != nil {
		return InstanceStatus{}, fmt.Errorf("update %s: %w", name, err)
	}
	l.applyWrite(name, path, data, format)
	return l.Get(name)
}

// Delete removes the spec file; the instance is stopped and forgotten by
// the pass it queues. Errors: ErrReadOnly, ErrNotFound, ErrConflict,
// ErrPreconditionFailed.
func (l *Loop) Delete(name string, ifMatch string) error {
	if l.readOnly {
		return fmt.Errorf("delete %s: %w", name, ErrReadOnly)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	path, _, _, err := l.current(name, ifMatch)
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	l.scan.recordDelete(l.relPath(path))
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	l.mu.Lock()
	delete(l.entries, name)
	l.rebuildRoutesLocked()
	l.mu.Unlock()
	l.q.Add(name)
	return nil
}

// SetState writes state (running|stopped) into the spec file and waits
// for the reconcile pass that applies it, bounded by ctx. If ctx ends
// first the file is written and the error wraps ctx.Err(). Starting an
// instance that failed past its restart budget clears the failure.
func (l *Loop) SetState(ctx context.Context, name, state string) (InstanceStatus, error) {
	if state != spec.StateRunning && state != spec.StateStopped {
		return InstanceStatus{}, fmt.Errorf("set state of %s: %w: state must be %q or %q, not %q", name, spec.ErrInvalid, spec.StateRunning, spec.StateStopped, state)
	}
	if l.readOnly {
		return InstanceStatus{}, fmt.Errorf("set state of %s: %w", name, ErrReadOnly)
	}
	gen, err := l.writeState(name, state)
	if err != nil {
		return InstanceStatus{}, fmt.Errorf("set state of %s: %w", name, err)
	}
	if state == spec.StateRunning {
		l.mu.RLock()
		sup := l.sups[name]
		l.mu.RUnlock()
		if sup != nil && sup.Snapshot().Phase == runtime.PhaseFailed {
			if err := sup.Start(ctx); err != nil {
				return InstanceStatus{}, fmt.Errorf("set state of %s: %w", name, err)
			}
		}
	}
	return l.waitApplied(ctx, name, gen)
}

// writeState writes state into name's file unless it already says so and
// returns the generation to wait for.
func (l *Loop) writeState(name, state string) (uint64, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	path, format, cur, err := l.current(name, "")
	if err != nil {
		return 0, err
	}
	rel := l.relPath(path)
	sp, err := spec.Decode(cur, format, rel)
	if err != nil {
		return 0, withFile(err, rel)
	}
	effective := sp.State
	if effective == "" {
		effective = spec.StateRunning
	}
	if effective == state {
		l.mu.RLock()
		defer l.mu.RUnlock()
		if e := l.entries[name]; e != nil {
			return e.gen, nil
		}
		return 0, ErrNotFound
	}
	ns := sp.Clone()
	ns.State = state
	data, err := spec.Update(cur, format, ns)
	if err != nil {
		return 0, fmt.Errorf("encode: %w", err)
	}
	if err := l.swap(path, cur, data); err != nil {
		return 0, err
	}
	return l.applyWrite(name, path, data, format), nil
}

// waitApplied waits until a pass of name has applied generation gen (or
// failed on it) and returns the instance's status.
func (l *Loop) waitApplied(ctx context.Context, name string, gen uint64) (InstanceStatus, error) {
	for {
		l.mu.RLock()
		e := l.entries[name]
		ch := l.passDone
		var (
			st   InstanceStatus
			done bool
			err  error
		)
		if e != nil {
			st = l.statusLocked(e)
			switch {
			case e.passGen >= gen && e.passErr != nil:
				done, err = true, e.passErr
			case e.appliedGen >= gen:
				done = true
			}
		}
		l.mu.RUnlock()
		if e == nil {
			return InstanceStatus{}, fmt.Errorf("wait for %s: %w", name, ErrNotFound)
		}
		if done {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("wait for %s to be applied: %w", name, ctx.Err())
		case <-ch:
		}
	}
}

// Restart restarts the instance's process without changing its file.
// Errors: ErrNotFound; runtime.ErrStopped when its desired state is
// stopped; runtime.ErrNotReady when it has no process yet.
func (l *Loop) Restart(ctx context.Context, name string) (InstanceStatus, error) {
	l.mu.RLock()
	e := l.entries[name]
	sup := l.sups[name]
	stopped := e != nil && e.spec != nil && e.spec.State == spec.StateStopped
	l.mu.RUnlock()
	switch {
	case e == nil:
		return InstanceStatus{}, fmt.Errorf("restart %s: %w", name, ErrNotFound)
	case stopped:
		return InstanceStatus{}, fmt.Errorf("restart %s: %w", name, runtime.ErrStopped)
	case sup == nil:
		return InstanceStatus{}, fmt.Errorf("restart %s: no process yet: %w", name, runtime.ErrNotReady)
	}
	if err := sup.Restart(ctx); err != nil {
		return InstanceStatus{}, fmt.Errorf("restart %s: %w", name, err)
	}
	return l.Get(name)
}

// validate checks a spec given to a write for the instance name.
func (l *Loop) validate(name string, s *spec.Spec) error {
	if err := spec.ValidateName(name); err != nil {
		return err
	}
	if s == nil {
		return fmt.Errorf("%w: no spec", spec.ErrInvalid)
	}
	return s.Validate(name, l.opts.Flags)
}

// current returns the path, format and on-disk content of name's file,
// checking ifMatch (when set) against that content. Caller holds writeMu.
func (l *Loop) current(name, ifMatch string) (path string, f spec.Format, data []byte, err error) {
	l.mu.RLock()
	e := l.entries[name]
	var conflict []string
	if e != nil {
		path, f, conflict = filepath.Join(l.dir, e.file), e.format, e.conflict
	}
	l.mu.RUnlock()
	switch {
	case e == nil:
		return "", "", nil, ErrNotFound
	case conflict != nil:
		return "", "", nil, fmt.Errorf("%w: %v", ErrConflict, conflict)
	}
	data, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil, ErrNotFound
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("read %s: %w", path, err)
	}
	if ifMatch != "" && !ETagMatches(ifMatch, etagOf(data)) {
		return "", "", nil, ErrPreconditionFailed
	}
	return path, f, data, nil
}

// ETagMatches reports whether an If-Match value matches etag: "*", or a
// comma-separated list of entity tags (quoted or not) one of which is
// etag. A weak tag (W/"...") never matches: If-Match compares strongly
// (RFC 9110 13.1.1).
func ETagMatches(ifMatch, etag string) bool {
	for t := range strings.SplitSeq(ifMatch, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if !strings.HasPrefix(t, "W/") && strings.Trim(t, `"`) == etag {
			return true
		}
	}
	return false
}

// swap atomically replaces path (whose content was read as cur) with
// data; if the file no longer holds cur just before the rename, nothing
// is written and the error is ErrPreconditionFailed.
func (l *Loop) swap(path string, cur, data []byte) error {
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	return writeAtomic(path, data, perm, func(tmp string) error {
		if l.beforeSwap != nil {
			l.beforeSwap(path)
		}
		now, err := os.ReadFile(path)
		if err != nil || etagOf(now) != etagOf(cur) {
			return fmt.Errorf("%w: %s changed on disk during the write", ErrPreconditionFailed, filepath.Base(path))
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("rename to %s: %w", path, err)
		}
		return nil
	})
}

// applyWrite records content we wrote as name's desired state and queues
// the name at once. It returns the new generation. Caller holds writeMu.
func (l *Loop) applyWrite(name, path string, data []byte, format spec.Format) uint64 {
	rel := l.relPath(path)
	f := l.scan.parse(data, rel, format, name)
	f.path, f.mtime = path, time.Now()
	l.scan.recordWrite(rel, f)
	l.mu.Lock()
	e := l.entries[name]
	if e == nil {
		e = &entry{name: name, created: f.mtime}
		l.entries[name] = e
	}
	e.revision = l.revision
	l.setFile(e, f)
	gen := e.gen
	l.rebuildRoutesLocked()
	l.mu.Unlock()
	l.q.Add(name)
	return gen
}

// relPath is path relative to the specs dir.
func (l *Loop) relPath(path string) string {
	rel, err := filepath.Rel(l.dir, path)
	if err != nil {
		return path
	}
	return rel
}
