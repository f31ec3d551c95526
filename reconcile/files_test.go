package reconcile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"llamactl/spec"
)

func TestSpecFile(t *testing.T) {
	tests := []struct {
		base   string
		format spec.Format
		stem   string
	}{
		{"qwen-7b.yaml", spec.YAML, "qwen-7b"},
		{"a.yml", spec.YAML, "a"},
		{"b.toml", spec.TOML, "b"},
		{"c.json", spec.JSON, "c"},
		{"d.YAML", spec.YAML, "d"},
		{"v1.2.yaml", spec.YAML, "v1.2"},
		{"readme.md", "", ""},
		{".hidden.yaml", "", ""},
		{".qwen.yaml.swp", "", ""},
		{"qwen.yaml.swp", "", ""},
		{"qwen.yaml~", "", ""},
		{"#qwen.yaml#", "", ""},
		{".#qwen.yaml", "", ""},
		{".llamactl-tmp-123", "", ""},
		{"4913", "", ""}, // vim's write test file
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			f, stem, ok := specFile(tt.base)
			if ok != (tt.format != "") || f != tt.format || stem != tt.stem {
				t.Fatalf("specFile(%q) = %q %q %v, want %q %q", tt.base, f, stem, ok, tt.format, tt.stem)
			}
		})
	}
}

func TestFindLinkAndRevision(t *testing.T) {
	root := t.TempDir()
	wt := filepath.Join(root, ".worktrees", "abc123")
	if err := os.MkdirAll(filepath.Join(wt, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "repo")
	if err := os.Symlink(filepath.Join(".worktrees", "abc123"), link); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{link, filepath.Join(link, "models")} {
		if got := findLink(dir); got != link {
			t.Fatalf("findLink(%s) = %q, want %q", dir, got, link)
		}
	}
	if got := revisionOf(link); got != "abc123" {
		t.Fatalf("revision = %q", got)
	}
	if got := findLink(wt); got != "" {
		t.Fatalf("findLink of a plain folder = %q", got)
	}
}

func TestWriteAtomicCleansUpOnFailedCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	boom := errors.New("boom")
	err := writeAtomic(path, []byte("x"), 0o600, func(string) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
	err = writeAtomic(path, []byte("x"), 0o600, func(tmp string) error { return os.Rename(tmp, path) })
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat = %v %v", fi, err)
	}
}

// A specs dir in a git work tree (.git in it or in a parent, a directory
// or a worktree's file) is read-only to the API unless GitWritable.
func TestGitWorkTreeReadOnly(t *testing.T) {
	for _, layout := range []string{"in", "parent", "file"} {
		t.Run(layout, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "instances")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			var err error
			switch layout {
			case "in":
				err = os.Mkdir(filepath.Join(dir, ".git"), 0o755)
			case "parent":
				err = os.Mkdir(filepath.Join(root, ".git"), 0o755)
			case "file":
				err = os.WriteFile(filepath.Join(root, ".git"), []byte("gitdir: /elsewhere\n"), 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := gitWorkTree(dir); got == "" {
				t.Fatal("no work tree found")
			}
			l, _ := newFakeLoop(t, dir, nil)
			settle(t, l)
			if !l.Status().ReadOnly {
				t.Error("status does not say read-only")
			}
			if _, err := l.Create("a", specOf(t, model("a")), spec.YAML); !errors.Is(err, ErrReadOnly) {
				t.Fatalf("create in a work tree: %v, want ErrReadOnly", err)
			}
			w, _ := newFakeLoop(t, dir, func(o *Options) { o.GitWritable = true })
			settle(t, w)
			if _, err := w.Create("a", specOf(t, model("a")), spec.YAML); err != nil {
				t.Fatalf("create with GitWritable: %v", err)
			}
		})
	}
}

func specOf(t *testing.T, body string) *spec.Spec {
	t.Helper()
	s, err := spec.Decode([]byte(body), spec.YAML, "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
