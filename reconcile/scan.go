package reconcile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"llamactl/spec"
)

// scanFile is one spec file as read by a scan.
type scanFile struct {
	rel    string // path relative to the specs dir, for messages and status
	path   string // resolved absolute path
	format spec.Format
	stem   string
	etag   string
	mtime  time.Time
	spec   *spec.Spec // nil when err != nil
	hash   string     // spec.Hash of spec
	err    error      // decode or validation error (a spec.ErrorList), or a read error
}

// scanResult is one consistent read of the specs directory.
type scanResult struct {
	root     string                 // the resolved specs dir
	revision string                 // git-sync revision, if the dir is under a link
	files    map[string][]*scanFile // by stem; more than one is a conflict
	dirs     []string               // resolved folders to watch
	err      error                  // the directory could not be read consistently
}

type statKey struct {
	size  int64
	mtime int64
}

type cached struct {
	key  statKey
	file *scanFile
}

// scanner reads the specs directory. It keeps the last complete view of
// the tree (files by path, folders) and a cache of parsed files by path and
// (size, mtime), so that a batch of events costs a stat and a read of the
// paths the events named, and a full rescan reads only what changed. A
// scanner is owned by one goroutine at a time (the loop holds writeMu
// around every scan).
type scanner struct {
	dir    string // the specs dir as configured, absolute
	link   string // nearest symlink at or above dir ("" when none)
	binary string
	flags  *spec.Flags
	cache  map[string]cached

	// The last complete view; valid is false until a full scan succeeds
	// and after any failed scan.
	valid bool
	root  string
	rev   string
	view  map[string]*scanFile // by resolved path
	dirs  map[string]struct{}
}

// errUnstable reports a directory that changed under a scan.
var errUnstable = errors.New("specs directory changed during the scan")

// scan reads the directory. With full unset and a valid view, only the
// paths in dirty are looked at again (a folder named there is walked);
// otherwise the whole tree is walked, and force rereads every file even
// when its size and mtime look unchanged. A scan that races a swap of the
// tree is retried a few times, in full, before it reports errUnstable.
func (s *scanner) scan(full, force bool, dirty map[string]struct{}) scanResult {
	var res scanResult
	for range 3 {
		res = s.scanOnce(full, force, dirty)
		if !errors.Is(res.err, errUnstable) {
			break
		}
		full = true
	}
	return res
}

func (s *scanner) scanOnce(full, force bool, dirty map[string]struct{}) scanResult {
	rev := revisionOf(s.link)
	root, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		s.valid = false
		return scanResult{err: fmt.Errorf("resolve specs dir %s: %w", s.dir, err)}
	}
	if !full && !force && s.valid && root == s.root && rev == s.rev {
		err = s.update(dirty)
	} else {
		err = s.walkAll(root, force, dirty)
	}
	if err == nil {
		// A tree swapped or removed under the scan is not a consistent read.
		if again, e := filepath.EvalSymlinks(s.dir); e != nil || again != root || revisionOf(s.link) != rev {
			err = errUnstable
		}
	}
	if err != nil {
		s.valid = false
		return scanResult{err: fmt.Errorf("read specs dir %s: %w", s.dir, err)}
	}
	s.valid, s.root, s.rev = true, root, rev
	res := scanResult{root: root, revision: rev, files: make(map[string][]*scanFile, len(s.view))}
	for _, f := range s.view {
		res.files[f.stem] = append(res.files[f.stem], f)
	}
	res.dirs = make([]string, 0, len(s.dirs))
	for d := range s.dirs {
		res.dirs = append(res.dirs, d)
	}
	return res
}

// walkAll replaces the view by a walk of the whole tree at root.
func (s *scanner) walkAll(root string, force bool, dirty map[string]struct{}) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("stat %s: %w", root, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", root)
	}
	s.root = root
	s.view = make(map[string]*scanFile, len(s.view))
	s.dirs = make(map[string]struct{}, len(s.dirs))
	if err := s.walk(root, force, dirty); err != nil {
		return err
	}
	for p := range s.cache {
		if _, ok := s.view[p]; !ok {
			delete(s.cache, p)
		}
	}
	return nil
}

// walk adds the folder at p (inside s.root) and everything below it to
// the view.
func (s *scanner) walk(p string, force bool, dirty map[string]struct{}) error {
	return filepath.WalkDir(p, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errUnstable
			}
			return err
		}
		if p != s.root && ignored(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			s.dirs[p] = struct{}{}
			return nil
		}
		return s.addFile(p, force, dirty)
	})
}

// addFile reads the spec file at p into the view; other files are skipped.
func (s *scanner) addFile(p string, force bool, dirty map[string]struct{}) error {
	format, stem, ok := specFile(filepath.Base(p))
	if !ok {
		return nil
	}
	f, err := s.readFile(s.root, p, format, stem, force, dirty)
	if err != nil {
		return err
	}
	s.view[p] = f
	return nil
}

// update brings the view up to date for the paths in dirty: a path that
// is gone is forgotten with everything below it, a folder is walked, a
// file is read. A path outside the tree makes the scan unstable (and the
// retry a full one).
func (s *scanner) update(dirty map[string]struct{}) error {
	for p := range dirty {
		rel, err := filepath.Rel(s.root, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return errUnstable
		}
		if rel == "." {
			return errUnstable // the root itself changed: walk it all
		}
		if _, known := s.dirs[filepath.Dir(p)]; !known {
			continue // inside an ignored folder, or already forgotten
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			s.forget(p)
			continue
		}
		if err != nil {
			return err
		}
		if ignored(fi.Name()) {
			continue
		}
		if fi.IsDir() {
			s.forget(p)
			if err := s.walk(p, false, dirty); err != nil {
				return err
			}
			continue
		}
		delete(s.view, p)
		if err := s.addFile(p, false, dirty); err != nil {
			return err
		}
	}
	return nil
}

// forget drops p and everything below it from the view.
func (s *scanner) forget(p string) {
	delete(s.view, p)
	delete(s.cache, p)
	if _, isDir := s.dirs[p]; !isDir {
		return
	}
	prefix := p + string(filepath.Separator)
	for q := range s.view {
		if strings.HasPrefix(q, prefix) {
			delete(s.view, q)
			delete(s.cache, q)
		}
	}
	for d := range s.dirs {
		if d == p || strings.HasPrefix(d, prefix) {
			delete(s.dirs, d)
		}
	}
}

// readFile returns the parsed file at p, from the cache when its size and
// mtime are unchanged and it is neither dirty nor forced. A file that
// vanished since the folder was listed makes the scan unstable.
func (s *scanner) readFile(root, p string, format spec.Format, stem string, force bool, dirty map[string]struct{}) (*scanFile, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		rel = p
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errUnstable
		}
		return &scanFile{rel: rel, path: p, format: format, stem: stem, err: fmt.Errorf("%s: %w", rel, err)}, nil
	}
	key := statKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	c, hit := s.cache[p]
	_, isDirty := dirty[p]
	if hit && c.key == key && c.file.rel == rel && !force && !isDirty {
		return c.file, nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errUnstable
		}
		return &scanFile{rel: rel, path: p, format: format, stem: stem, mtime: fi.ModTime(), err: fmt.Errorf("%s: %w", rel, err)}, nil
	}
	etag := etagOf(data)
	if hit && c.file.etag == etag && c.file.rel == rel {
		s.cache[p] = cached{key: key, file: c.file}
		return c.file, nil
	}
	f := s.parse(data, rel, format, stem)
	f.path, f.etag, f.mtime = p, etag, fi.ModTime()
	s.cache[p] = cached{key: key, file: f}
	return f, nil
}

// parse decodes and validates one file's content for the instance stem.
func (s *scanner) parse(data []byte, rel string, format spec.Format, stem string) *scanFile {
	f := &scanFile{rel: rel, format: format, stem: stem, etag: etagOf(data)}
	sp, err := spec.Decode(data, format, rel)
	if err == nil {
		err = sp.Validate(stem, s.flags)
	}
	if err != nil {
		f.err = withFile(err, rel)
		return f
	}
	f.spec, f.hash = sp, sp.Hash(s.binary, s.flags)
	return f
}

// withFile sets the file of located spec errors that lack one, so that
// every message reads "file:line:col: message".
func withFile(err error, file string) error {
	var list spec.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			if e != nil && e.File == "" {
				e.File = file
			}
		}
		return err
	}
	var one *spec.Error
	if errors.As(err, &one) && one.File == "" {
		one.File = file
	}
	return err
}

// recordWrite puts a file we wrote (at rel, with parsed content f) into
// the view and the cache, so that a scan running before the watcher
// reports the write does not bring back the old content.
func (s *scanner) recordWrite(rel string, f *scanFile) {
	if !s.valid {
		return
	}
	p := filepath.Join(s.root, rel)
	fi, err := os.Stat(p)
	if err != nil {
		return
	}
	c := *f
	c.path = p
	s.view[p] = &c
	s.cache[p] = cached{key: statKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}, file: &c}
}

// recordDelete drops a file we removed from the view.
func (s *scanner) recordDelete(rel string) {
	if s.valid {
		s.forget(filepath.Join(s.root, rel))
	}
}
