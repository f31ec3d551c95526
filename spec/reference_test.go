package spec

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the spec reference in ../README.md")

const (
	refBegin = "<!-- spec-reference:begin -->\n"
	refEnd   = "<!-- spec-reference:end -->"
)

// TestReadme fails when README.md's spec reference differs from
// ReferenceMarkdown. With -update it rewrites only that region.
func TestReadme(t *testing.T) {
	const path = "../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(refBegin))
	j := bytes.Index(data, []byte(refEnd))
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q ... %q markers", path, strings.TrimSpace(refBegin), refEnd)
	}
	i += len(refBegin)
	want := ReferenceMarkdown()
	if string(data[i:j]) == want {
		return
	}
	if !*update {
		t.Fatalf("the spec reference in %s is out of date; regenerate it with: go test ./spec -run TestReadme -update", path)
	}
	out := append(append(append([]byte{}, data[:i]...), want...), data[j:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", path)
}

func TestReferenceMarkdown(t *testing.T) {
	md := ReferenceMarkdown()
	lines := strings.Split(strings.TrimSpace(md), "\n")
	if got, want := len(lines)-2, len(options); got != want {
		t.Fatalf("%d rows, want %d", got, want)
	}
	for _, want := range []string{
		"| `temperature` | number | `--temp V` |",
		"| `flash_attn` | boolean | `--flash-attn on` / `--flash-attn off` |",
		"| `no_mmap` | boolean | `--no-mmap` / `--mmap` |",
		"| `state` | string | supervision |",
		"| `port` | integer | — |",
		"| `verbose_prompt` | boolean | — (removed in build 9431) |",
		"| `lora` | list of strings | `--lora V`, repeated |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}
