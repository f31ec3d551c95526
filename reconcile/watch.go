package reconcile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher turns file system events into full, debounced rescans. It is
// owned by the goroutine running run: every field below is touched only
// there.
//
// It watches every folder of the (resolved) specs tree, and the anchor:
// the folder holding the git-sync link (or, without a link, the folder
// holding the specs dir), so that a swapped link or a specs dir removed
// and recreated is noticed. Any event there for the link's (or dir's) name
// re-resolves the tree and loads it as one batch.
type watcher struct {
	l          *Loop
	fs         *fsnotify.Watcher
	anchor     string                 // folder holding the link or the specs dir
	anchorName string                 // base name of the link or specs dir
	watched    map[string]os.FileInfo // folders currently watched, as they were when added
	dirty      map[string]struct{}    // paths named by events since the last scan
	full       bool                   // the next scan walks the whole tree
	loadMarked bool                   // the initial load was handed to markLoaded
	syncMarked bool                   // the first good read was handed to markSynced
	pending    bool                   // events wait for the debounce timer
	first      time.Time              // first event of the pending batch
	maxWait    time.Duration          // a stream of events is still scanned this often
	dirErr     string                 // the unreadable dir's error, as last logged ("" readable)
	dirErrAt   time.Time              // when it was logged
}

// dirErrRepeat is how often the same unreadable-dir warning is logged
// again while the directory stays unreadable (it is retried far more
// often).
const dirErrRepeat = time.Minute

func newWatcher(l *Loop) (*watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{
		l:       l,
		fs:      fsw,
		watched: map[string]os.FileInfo{},
		dirty:   map[string]struct{}{},
		maxWait: 10 * l.opts.Debounce,
	}
	target := l.dir
	if l.link != "" {
		target = l.link
	}
	w.anchor, w.anchorName = filepath.Dir(target), filepath.Base(target)
	return w, nil
}

// run loads the tree, marks the initial names for Loaded, and then rescans on debounced
// events, on the resync ticker, on Resync and, while the directory is
// unreadable, on a retry timer. It returns when ctx
// ends, after closing the fsnotify watcher.
func (w *watcher) run(ctx context.Context) {
	defer func() {
		if err := w.fs.Close(); err != nil {
			w.l.log.Warn().Err(err).Msg("close file watcher")
		}
	}()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer debounce.Stop()
	defer retry.Stop()
	resync := time.NewTicker(w.l.opts.ResyncInterval)
	defer resync.Stop()

	arm := func() {
		now := time.Now()
		if !w.pending {
			w.pending, w.first = true, now
		}
		d := w.l.opts.Debounce
		if left := w.maxWait - now.Sub(w.first); left < d {
			d = max(left, 0)
		}
		debounce.Reset(d)
	}
	sync := func(force, counted bool) {
		w.pending = false
		debounce.Stop()
		again, retryIn := w.sync(force, counted)
		if retryIn > 0 {
			retry.Reset(retryIn)
		}
		if again {
			arm()
		}
	}

	sync(true, false)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				arm()
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.l.log.Warn().Err(err).Msg("file watcher")
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.full = true
				sync(true, true)
			}
		case <-debounce.C:
			sync(false, true)
		case <-retry.C:
			sync(true, true)
		case <-resync.C:
			sync(true, true)
		case <-w.l.resyncCh:
			sync(true, true)
		}
	}
}

// relevant reports whether ev may change the desired state, and notes the
// path for the next scan.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
	if dir == w.anchor {
		if base == w.anchorName {
			w.full = true // the link was swapped or the dir replaced
			return true
		}
		return false
	}
	if ignored(base) {
		return false
	}
	w.dirty[ev.Name] = struct{}{}
	return true
}

// sync scans, applies and queues the changed names, then makes the set of
// watched folders match the tree. again asks for another scan soon (new
// folders were added to the watch after the scan listed them); retryIn > 0
// asks for a retry of an unreadable directory.
func (w *watcher) sync(force, counted bool) (again bool, retryIn time.Duration) {
	l := w.l
	l.writeMu.Lock()
	res := l.scan.scan(w.full, force, w.dirty)
	w.full = false
	changed, retry := l.apply(res)
	l.writeMu.Unlock()
	clear(w.dirty)
	l.scans.Add(1)
	w.logDirErr(res.err)
	// Watch new folders before anything is queued (so before Loaded can
	// close); files created in them before the watch was added are found
	// by the full walk asked for by again.
	if again = w.rewatch(res); again {
		w.full = true
	}
	if !w.loadMarked {
		w.loadMarked = true
		l.markLoaded(changed) // before the names are queued
	}
	if !w.syncMarked && res.err == nil && !retry {
		w.syncMarked = true
		l.markSynced(changed)
	}
	for _, name := range changed {
		l.q.Add(name)
	}
	if counted && len(changed) > 0 {
		l.batches.Add(1)
	}
	if len(changed) > 0 {
		l.log.Info().Int("changed", len(changed)).Str("revision", res.revision).Msg("specs loaded")
	}
	if retry {
		retryIn = l.retryDelay
	}
	return again, retryIn
}

// logDirErr warns that the specs dir is unreadable when that is news (a
// new error, or dirErrRepeat since the last warning), and says when it
// is readable again.
func (w *watcher) logDirErr(err error) {
	l := w.l
	if err == nil {
		if w.dirErr != "" {
			l.log.Info().Str("was", w.dirErr).Msg("specs dir readable again")
			w.dirErr = ""
		}
		return
	}
	if msg := err.Error(); msg != w.dirErr || time.Since(w.dirErrAt) >= dirErrRepeat {
		l.log.Warn().Err(err).Msg("specs dir unreadable; keeping the fleet")
		w.dirErr, w.dirErrAt = msg, time.Now()
	}
}

// rewatch watches the anchor and every folder of a successful scan and
// drops watches of folders that are gone. A folder replaced by another
// under the same path (mv new specs) is watched anew. It reports whether a
// folder was newly added (files created in it before the watch may be
// missed by the scan that listed it).
func (w *watcher) rewatch(res scanResult) (added bool) {
	want := map[string]struct{}{w.anchor: {}}
	if res.err == nil {
		for _, d := range res.dirs {
			want[d] = struct{}{}
		}
	} else {
		for d := range w.watched {
			want[d] = struct{}{} // keep what we have until a good read
		}
	}
	for d, fi := range w.watched {
		_, keep := want[d]
		if keep {
			now, err := os.Stat(d)
			keep = err == nil && os.SameFile(fi, now)
		}
		if !keep {
			_ = w.fs.Remove(d) // fails when the folder is already gone
			delete(w.watched, d)
		}
	}
	for d := range want {
		if _, ok := w.watched[d]; ok {
			continue
		}
		fi, err := os.Stat(d)
		if err == nil {
			err = w.fs.Add(d)
		}
		if err != nil {
			w.l.log.Debug().Err(err).Str("dir", d).Msg("watch folder")
			continue
		}
		w.watched[d] = fi
		if d != w.anchor {
			added = true
		}
	}
	return added
}
