package reconcile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// scanner reads the specs directory. It keeps a cache of parsed files by
// resolved path and (size, mtime) so that a rescan reads only what
// changed. A scanner is owned by one goroutine at a time (the loop holds
// writeMu around every scan).
type scanner struct {
	dir    string // the specs dir as configured, absolute
	link   string // nearest symlink at or above dir ("" when none)
	binary string
	flags  *spec.Flags
	cache  map[string]cached
}

// errUnstable reports a directory that changed under a scan.
var errUnstable = errors.New("specs directory changed during the scan")

// scan reads the directory. Files in dirty, and every file when force is
// set, are read even when their size and mtime look unchanged. A scan
// that races a swap of the tree is retried a few times before it reports
// errUnstable.
func (s *scanner) scan(force bool, dirty map[string]struct{}) scanResult {
	var res scanResult
	for range 3 {
		res = s.scanOnce(force, dirty)
		if !errors.Is(res.err, errUnstable) {
			break
		}
	}
	return res
}

func (s *scanner) scanOnce(force bool, dirty map[string]struct{}) scanResult {
	res := scanResult{files: map[string][]*scanFile{}}
	rev := revisionOf(s.link)
	root, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		res.err = fmt.Errorf("resolve specs dir %s: %w", s.dir, err)
		return res
	}
	fi, err := os.Stat(root)
	if err != nil {
		res.err = fmt.Errorf("stat specs dir %s: %w", s.dir, err)
		return res
	}
	if !fi.IsDir() {
		res.err = fmt.Errorf("specs dir %s is not a directory", s.dir)
		return res
	}
	res.root, res.revision = root, rev
	seen := make(map[string]struct{}, len(s.cache))
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errUnstable
			}
			return err
		}
		if p != root && ignored(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			res.dirs = append(res.dirs, p)
			return nil
		}
		format, stem, ok := specFile(d.Name())
		if !ok {
			return nil
		}
		f, err := s.readFile(root, p, format, stem, force, dirty)
		if err != nil {
			return err
		}
		seen[p] = struct{}{}
		res.files[stem] = append(res.files[stem], f)
		return nil
	})
	if err != nil {
		res.err = fmt.Errorf("read specs dir %s: %w", s.dir, err)
		return res
	}
	// A tree swapped or removed under the walk is not a consistent read.
	if again, err := filepath.EvalSymlinks(s.dir); err != nil || again != root || revisionOf(s.link) != rev {
		res.err = errUnstable
		return res
	}
	if _, err := os.Stat(root); err != nil {
		res.err = errUnstable
		return res
	}
	for p := range s.cache {
		if _, ok := seen[p]; !ok {
			delete(s.cache, p)
		}
	}
	return res
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
