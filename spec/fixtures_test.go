package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFixtures runs ValidateFile over testdata/specs, the files that
// `llamactl validate` is tried on: each good file is valid, each bad one
// has exactly the expected problem.
func TestFixtures(t *testing.T) {
	good, err := filepath.Glob("../testdata/specs/good/*")
	if err != nil || len(good) < 4 {
		t.Fatalf("good fixtures: %v %v", good, err)
	}
	for _, path := range good {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if err := ValidateFile(path, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	bad := map[string]string{
		"typo.yaml":           `2:1: unknown key "temprature"; did you mean "temperature"?`,
		"wrong-type.toml":     `2:12: ctx_size: want integer, got string "4096"`,
		"duplicate.json":      `4:3: duplicate key "model" (first at line 2)`,
		"bad@name.yaml":       `1:1: name "bad@name" has a character outside [A-Za-z0-9._-]`,
		"name-mismatch.yaml":  `1:7: name "qwen" must equal the file name stem "name-mismatch"`,
		"no-model.yaml":       `1:1: no model source: set one of model, hf_repo, model_url or a *_default preset (without one llama-server starts as a router)`,
		"port-range.toml":     `2:8: port: 70000 out of range 1-65535`,
		"two-models.yaml":     `2:1: more than one model source (model and hf_repo): keep exactly one`,
		"syntax.yaml":         `2:7: syntax error: sequence end token ']' not found`,
		"syntax.json":         `3:1: syntax error: invalid character '}' looking for beginning of object key string`,
		"removed-option.yaml": `2:1: verbose_prompt: llama-server version 9431 has no --verbose-prompt flag (option removed)`,
		"empty.toml":          `1:1: empty spec`,
	}
	entries, err := os.ReadDir("../testdata/specs/bad")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(bad) {
		t.Errorf("%d bad fixtures, %d expectations", len(entries), len(bad))
	}
	for name, want := range bad {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("../testdata/specs/bad", name)
			err := ValidateFile(path, nil)
			l, ok := AsList(err)
			if !ok || len(l) != 1 {
				t.Fatalf("ValidateFile = %v, want one error", err)
			}
			if got, w := err.Error(), path+":"+want; got != w {
				t.Errorf("got  %s\nwant %s", got, w)
			}
		})
	}
}

func TestValidateFileMergesProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(path, []byte("model: /m\nctx_size: big\nport: 0\nmodle: y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, ok := AsList(ValidateFile(path, nil))
	if !ok || len(l) != 3 {
		t.Fatalf("ValidateFile = %v, want 3 errors", l)
	}
	for i, line := range []int{2, 3, 4} {
		if l[i].Line != line {
			t.Errorf("error %d at line %d, want %d", i, l[i].Line, line)
		}
	}
	if err := ValidateFile(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Error("missing file: no error")
	}
	if err := ValidateFile("x.txt", nil); err == nil {
		t.Error("unknown extension: no error")
	}
}
