package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var located = regexp.MustCompile(`^[^:]+:\d+:\d+: .+`)

func TestValidateGoodFixtures(t *testing.T) {
	code, out, errOut := runCmd("validate", "../../testdata/specs/good", "../../examples/instances")
	if code != 0 {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "valid") {
		t.Errorf("stderr %q has no summary", errOut)
	}
}

func TestValidateBadFixtures(t *testing.T) {
	dir := "../../testdata/specs/bad"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no bad fixtures")
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			path := filepath.Join(dir, e.Name())
			code, out, _ := runCmd("validate", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q", code, out)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, path+":") {
					t.Errorf("problem %q does not name the file", line)
				}
				if !located.MatchString(line) {
					t.Errorf("problem %q is not file:line:col: message", line)
				}
			}
		})
	}
}

func TestValidateNameConflict(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"a.yaml":     "model: /m.gguf\n",
		"sub/a.toml": "model = \"/m.gguf\"\n",
		".hidden/x":  "",
	} {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ := runCmd("validate", dir)
	if code != 1 || strings.Count(out, `instance name "a" is also claimed`) != 2 {
		t.Fatalf("exit %d, stdout %q: want a conflict reported on both files", code, out)
	}
}
