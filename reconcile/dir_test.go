package reconcile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitSync simulates one git-sync round under root: a new worktree folder
// with files, a temporary symlink renamed over root/repo, and the old
// worktree removed.
func gitSync(t *testing.T, root, rev string, files map[string]string, old string) {
	t.Helper()
	wt := filepath.Join(root, ".worktrees", rev)
	for name, data := range files {
		writeFile(t, filepath.Join(wt, name), data)
	}
	tmp := filepath.Join(root, "tmp-link")
	must(t, os.Symlink(filepath.Join(".worktrees", rev), tmp))
	must(t, os.Rename(tmp, filepath.Join(root, "repo")))
	if old != "" {
		must(t, os.RemoveAll(filepath.Join(root, ".worktrees", old)))
	}
}

func TestGitSyncSwap(t *testing.T) {
	root := t.TempDir()
	gitSync(t, root, "1111aaaa", map[string]string{
		"models/a.yaml":  model("a"),
		"models/b.yaml":  model("b"),
		"models/c.yaml":  model("c"),
		"models/d.yaml":  model("d"),
		"README.md":      "# fleet\n",
		"models/e.yaml~": "backup",
	}, "")
	specs := filepath.Join(root, "repo", "models")
	l, procs := newFakeLoop(t, specs, nil)
	settle(t, l)
	if ds := l.Status(); ds.Revision != "1111aaaa" || !ds.ReadOnly || ds.Error != "" || ds.Instances != 4 {
		t.Fatalf("daemon status = %+v", ds)
	}
	sups := map[string]*fakeSup{}
	for _, n := range []string{"a", "b", "c", "d"} {
		sups[n] = procs.sup(n)
	}
	batches := l.batches.Load()

	// b changes, c is removed, e is new, a and d are unchanged (d only in
	// a comment).
	gitSync(t, root, "2222bbbb", map[string]string{
		"models/a.yaml": model("a"),
		"models/b.yaml": model("b", "ctx_size: 8192"),
		"models/d.yaml": "# reviewed\n" + model("d"),
		"models/e.yaml": model("e"),
	}, "1111aaaa")
	waitFor(t, "the new revision", func() bool { return l.Status().Revision == "2222bbbb" })
	waitFor(t, "c removed and e started", func() bool { return procs.sup("c") == nil && procs.sup("e") != nil })
	settle(t, l)
	if got := l.batches.Load() - batches; got != 1 {
		t.Fatalf("batches = %d, want 1", got)
	}
	for n, want := range map[string]int{"a": 0, "b": 1, "d": 0} {
		if s, st, r := sups[n].counts(); s != 1 || st != 0 || r != want {
			t.Errorf("%s: starts %d stops %d restarts %d, want %d restarts", n, s, st, r, want)
		}
		if procs.sup(n) != sups[n] {
			t.Errorf("%s got a new supervisor", n)
		}
	}
	st, _ := l.Get("b")
	if st.Revision != "2222bbbb" || st.File != "b.yaml" {
		t.Fatalf("b = %+v", st)
	}
	if _, err := l.Create("x", nil, ""); err == nil || !strings.Contains(err.Error(), "commit") {
		t.Fatalf("write to a git-sync dir: %v", err)
	}
}

func TestDirectoryRemovedAndRestoredPrunesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "specs")
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	a, b := procs.sup("a"), procs.sup("b")

	must(t, os.RemoveAll(dir))
	waitFor(t, "the daemon error", func() bool { return l.Status().Error != "" })
	// Stay gone for longer than the retry of an unreadable directory.
	time.Sleep(l.retryDelay + 100*time.Millisecond)
	if procs.count() != 2 || len(l.List()) != 2 {
		t.Fatalf("fleet pruned while the dir was gone: %d processes, %d instances", procs.count(), len(l.List()))
	}

	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b", "ctx_size: 512"))
	waitFor(t, "the error to clear", func() bool { return l.Status().Error == "" })
	waitFor(t, "b's change", func() bool { _, _, r := b.counts(); return r == 1 })
	settle(t, l)
	if s, st, r := a.counts(); s != 1 || st != 0 || r != 0 {
		t.Fatalf("a touched: %d %d %d", s, st, r)
	}
	// Edits in the new folder are seen.
	writeFile(t, filepath.Join(dir, "c.yaml"), model("c"))
	waitFor(t, "c to start", func() bool { return procs.sup("c") != nil })
}

func TestDirectoryReplacedWholesale(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "specs")
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	a := procs.sup("a")
	next := filepath.Join(parent, "specs.new")
	writeFile(t, filepath.Join(next, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(next, "c.yaml"), model("c"))
	must(t, os.Rename(dir, filepath.Join(parent, "specs.old")))
	must(t, os.Rename(next, dir))
	waitFor(t, "b removed, c started", func() bool { return procs.sup("b") == nil && procs.sup("c") != nil })
	settle(t, l)
	if s, st, r := a.counts(); s != 1 || st != 0 || r != 0 || procs.sup("a") != a {
		t.Fatalf("a touched: %d %d %d", s, st, r)
	}
	writeFile(t, filepath.Join(dir, "d.yaml"), model("d"))
	waitFor(t, "d in the new folder", func() bool { return procs.sup("d") != nil })
}

// An empty directory never prunes the fleet, however long it stays
// empty; files coming back are applied, and an API delete still removes.
func TestEmptyDirNeverPrunes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	a := procs.sup("a")
	scans := l.scans.Load()
	must(t, os.Remove(filepath.Join(dir, "a.yaml")))
	must(t, os.Remove(filepath.Join(dir, "b.yaml")))
	waitFor(t, "the daemon error", func() bool { return strings.Contains(l.Status().Error, "no spec files") })
	l.Resync()
	waitScan(t, l, scans+1)
	time.Sleep(l.retryDelay + 100*time.Millisecond)
	if procs.count() != 2 || len(l.List()) != 2 {
		t.Fatalf("empty dir pruned the fleet: %d processes, %d instances", procs.count(), len(l.List()))
	}

	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	waitFor(t, "the error to clear and b to go", func() bool { return l.Status().Error == "" && procs.sup("b") == nil })
	if procs.sup("a") != a {
		t.Fatal("a was replaced")
	}
	if err := l.Delete("a", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a deleted through the API", func() bool { return procs.sup("a") == nil && len(l.List()) == 0 })
}

func TestMissingDirAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	l, procs := newFakeLoop(t, dir, nil)
	if l.Status().Error == "" {
		t.Fatal("no error for a missing dir")
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	waitFor(t, "a to start", func() bool { return procs.sup("a") != nil })
	if e := l.Status().Error; e != "" {
		t.Fatalf("error = %q", e)
	}
}

func TestSubfolderMovesAndRemovals(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "team1", "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "team1", "deep", "b.yaml"), model("b"))
	writeFile(t, filepath.Join(dir, "team2", "c.yaml"), model("c"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	a, b := procs.sup("a"), procs.sup("b")

	// A folder renamed inside the tree: same instances, new paths.
	must(t, os.Rename(filepath.Join(dir, "team1"), filepath.Join(dir, "teamA")))
	waitFor(t, "the new path of b", func() bool {
		st, _ := l.Get("b")
		return st.File == filepath.Join("teamA", "deep", "b.yaml")
	})
	settle(t, l)
	if procs.sup("a") != a || procs.sup("b") != b {
		t.Fatal("a rename of a folder replaced supervisors")
	}
	for _, s := range []*fakeSup{a, b} {
		if st, stops, r := s.counts(); st != 1 || stops != 0 || r != 0 {
			t.Fatalf("touched by a folder rename: %d %d %d", st, stops, r)
		}
	}
	// Files in the renamed folder are still watched.
	writeFile(t, filepath.Join(dir, "teamA", "deep", "d.yaml"), model("d"))
	waitFor(t, "d to start", func() bool { return procs.sup("d") != nil })

	// A folder removed removes its instances only.
	must(t, os.RemoveAll(filepath.Join(dir, "teamA")))
	waitFor(t, "a, b and d removed", func() bool {
		return procs.sup("a") == nil && procs.sup("b") == nil && procs.sup("d") == nil
	})
	if procs.sup("c") == nil {
		t.Fatal("c removed")
	}
	// A folder moved in from outside the tree.
	outside := filepath.Join(t.TempDir(), "team3")
	writeFile(t, filepath.Join(outside, "e.yaml"), model("e"))
	must(t, os.Rename(outside, filepath.Join(dir, "team3")))
	waitFor(t, "e to start", func() bool { return procs.sup("e") != nil })
}

func TestResyncCatchesMissedEvents(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	l, procs := newFakeLoop(t, dir, func(o *Options) { o.ResyncInterval = time.Second })
	settle(t, l)
	waitFor(t, "the walk after the first watch", func() bool { return l.scans.Load() >= 2 })
	// Blind the watcher: no event will report the edits.
	real, err := filepath.EvalSymlinks(dir)
	must(t, err)
	must(t, l.fsw.Remove(real))
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "ctx_size: 128"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	time.Sleep(4 * l.opts.Debounce)
	if procs.sup("b") != nil {
		t.Fatal("the watcher was not blind; the test proves nothing")
	}
	waitFor(t, "the resync to apply the edits", func() bool {
		_, _, r := procs.sup("a").counts()
		return r == 1 && procs.sup("b") != nil
	})
}
