package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"llamactl/spec"
)

// tmpPrefix starts the names of our own temporary files; the scanner and
// the watcher skip them (they are hidden files too).
const tmpPrefix = ".llamactl-tmp-"

// ignored reports whether a file or folder name is never a spec and never
// worth an event: hidden names (.git, .#lock files, our temp files),
// editor swap and backup files.
func ignored(base string) bool {
	switch {
	case base == "" || base[0] == '.':
		return true
	case strings.HasSuffix(base, "~"):
		return true
	case strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"):
		return true
	}
	switch filepath.Ext(base) {
	case ".swp", ".swo", ".swx":
		return true
	}
	return false
}

// specFile reports the format and stem of a spec file name, ok false for
// names that are not spec files.
func specFile(base string) (f spec.Format, stem string, ok bool) {
	if ignored(base) {
		return "", "", false
	}
	ext := filepath.Ext(base)
	switch strings.ToLower(ext) {
	case ".yaml", ".yml":
		f = spec.YAML
	case ".toml":
		f = spec.TOML
	case ".json":
		f = spec.JSON
	default:
		return "", "", false
	}
	return f, strings.TrimSuffix(base, ext), true
}

// etagOf is the content hash the API shows as ETag: the first 16 bytes of
// the SHA-256 of the file, in hex (unquoted; the HTTP layer quotes it).
func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// findLink returns the nearest path element of dir (dir itself or one of
// its ancestors) that is a symbolic link, or "" when there is none. A
// git-sync checkout is such a link, swapped atomically on every sync.
func findLink(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for p := abs; ; {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return ""
		}
		p = parent
	}
}

// gitWorkTree returns the top of the git work tree dir is in (the nearest
// of dir and its ancestors that holds a .git directory or file), or ""
// when there is none. Specs in a git checkout are changed by commits, not
// by the API.
func gitWorkTree(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for p := abs; ; {
		if _, err := os.Lstat(filepath.Join(p, ".git")); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return ""
		}
		p = parent
	}
}

// revisionOf is the git-sync revision of link: the base name of its
// target (git-sync names worktrees after the commit).
func revisionOf(link string) string {
	if link == "" {
		return ""
	}
	t, err := os.Readlink(link)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// writeAtomic writes data to path through a temporary file in the same
// folder: write, fsync, close, then commit(tmp) (a rename or a link), then
// fsync the folder. On any error the temporary file is removed.
func writeAtomic(path string, data []byte, perm fs.FileMode, commit func(tmp string) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreNotExist(os.Remove(tmp)))
		}
	}()
	if _, err := f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", tmp, err), f.Close())
	}
	if err := f.Chmod(perm); err != nil {
		return errors.Join(fmt.Errorf("chmod %s: %w", tmp, err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync %s: %w", tmp, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := commit(tmp); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a folder so that a rename or removal in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
