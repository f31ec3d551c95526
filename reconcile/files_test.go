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
