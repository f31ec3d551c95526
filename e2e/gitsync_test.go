package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGitSync points the daemon at a git-sync style link (a symlink to a
// worktree named after the revision, swapped atomically on every sync).
// The specs are read-only; a swap is loaded as one batch: changed
// instances restart, removed ones stop, new ones start, and the revision
// is shown.
func TestGitSync(t *testing.T) {
	t.Parallel()
	fd := newFleetDir(t)
	syncDir := filepath.Join(fd.Root, "sync")
	link := filepath.Join(syncDir, "current")
	worktree := func(rev string, files map[string]string) {
		dir := filepath.Join(syncDir, rev)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap := func(rev string) {
		tmp := filepath.Join(syncDir, ".tmp-link")
		if err := os.Symlink(rev, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, link); err != nil {
			t.Fatal(err)
		}
	}
	revision := func(d *daemon, name string) string {
		r := d.call("GET", "/api/v1/instances/"+name, nil)
		var v struct {
			Revision string `json:"revision"`
		}
		_ = json.Unmarshal(r.Body, &v)
		return v.Revision
	}

	worktree("aaaa1111", map[string]string{
		"g1.yaml": fd.specYAML("g1", nil, "ctx_size: 1024"),
		"g2.yaml": fd.specYAML("g2", nil),
	})
	swap("aaaa1111")
	d := startDaemon(t, fd, daemonOpts{SpecsDir: link})
	g1 := d.waitHealthy("g1")
	g2 := d.waitHealthy("g2")
	if rev := revision(d, "g1"); rev != "aaaa1111" {
		t.Errorf("revision %q, want aaaa1111", rev)
	}
	if st := d.status(); st.Revision != "aaaa1111" || !st.ReadOnly {
		t.Errorf("daemon status %+v, want revision aaaa1111 and readonly", st)
	}
	if r := d.call("POST", "/api/v1/instances/g3", map[string]any{"model": "/models/g3.gguf"}); r.Status != http.StatusConflict {
		t.Errorf("create in a git-sync checkout: %s, want 409", r)
	}

	worktree("bbbb2222", map[string]string{
		"g1.yaml": fd.specYAML("g1", nil, "ctx_size: 2048"),
		"g3.yaml": fd.specYAML("g3", nil),
	})
	swap("bbbb2222")
	d.waitInstance("g1", "to restart with the synced spec", func(i instance) bool {
		return i.Running && i.PID != g1.PID && alive(i.PID)
	})
	if argv := readArgv(t, fd, "g1"); !hasArgPair(argv, "--ctx-size", "2048") {
		t.Errorf("g1 argv after sync: %q, want --ctx-size 2048", argv)
	}
	d.waitHealthy("g3")
	waitGone(t, g2.PID, "g2, removed by the sync")
	waitFor(t, healthyTimeout, "g2 to be 404", func() (bool, string) {
		_, ok := d.instance("g2")
		return !ok, "still listed"
	})
	if rev := revision(d, "g1"); rev != "bbbb2222" {
		t.Errorf("revision after sync %q, want bbbb2222", rev)
	}
	if st := d.status(); st.Revision != "bbbb2222" || st.Error != "" {
		t.Errorf("daemon status after sync %+v, want revision bbbb2222 and no error", st)
	}
}

// TestGitCheckoutReadOnly: specs in a plain git checkout (kept fresh by
// git pull) are read-only to the API, and an explicit --readonly=false
// lets the API write there.
func TestGitCheckoutReadOnly(t *testing.T) {
	t.Parallel()
	fd := newFleetDir(t)
	if err := os.Mkdir(filepath.Join(fd.Root, ".git"), 0o755); err != nil { // specs is Root/specs
		t.Fatal(err)
	}
	d := startDaemon(t, fd, daemonOpts{})
	if st := d.status(); !st.ReadOnly {
		t.Errorf("status of specs in a work tree: %+v, want read-only", st)
	}
	r := d.call("POST", "/api/v1/instances/newbie", map[string]any{"model": "/models/newbie.gguf"})
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "commit") {
		t.Errorf("create in a git checkout: %s, want 409 saying to commit", r)
	}
	if _, err := os.Stat(filepath.Join(fd.SpecsDir, "newbie.yaml")); err == nil {
		t.Error("refused create wrote newbie.yaml")
	}
	d.signal(syscall.SIGTERM)
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("daemon exit code %d", code)
	}

	w := startDaemon(t, fd, daemonOpts{Args: []string{"--readonly=false"}})
	if st := w.status(); st.ReadOnly {
		t.Errorf("status with --readonly=false: %+v", st)
	}
	w.expect(w.call("POST", "/api/v1/instances/newbie", map[string]any{"model": "/models/newbie.gguf"}), http.StatusCreated, "create with --readonly=false")
	if _, err := os.Stat(filepath.Join(fd.SpecsDir, "newbie.yaml")); err != nil {
		t.Errorf("create with --readonly=false: %v", err)
	}
}
