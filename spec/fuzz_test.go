package spec

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder in all three formats.
// It must never panic, and whatever decodes must survive every other
// operation and encode back to an equal spec.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"../testdata/specs/good", "../testdata/specs/bad"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	for _, s := range []string{
		"", "{}", "[]", "null", "model: /m\nenv: {A: b}\n", "a: &x 1\nb: *x\n", "<<: {a: 1}\n",
		"model = \"/m\"\n[env]\nA = \"1\"\n", `{"model": "/m", "ctx_size": 1e400}`,
		"ctx_size: 0x10\ntemperature: .inf\n", "model = 1979-05-27\n", "!!str model: x\n",
		"[[lora]]\n", "env.A.B = \"1\"\n", "model: |\n  multi\n  line\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fm := range []Format{YAML, TOML, JSON} {
			s, err := Decode(data, fm, "fuzz")
			if err != nil {
				if s != nil {
					t.Fatalf("%s: both a spec and an error", fm)
				}
				if _, ok := AsList(err); !ok {
					t.Fatalf("%s: error is not an ErrorList: %v", fm, err)
				}
				continue
			}
			_ = s.Validate("fuzz", nil)
			_, _ = s.Args(nil)
			_ = s.Hash("llama-server", nil)
			if !Equal(s.Clone(), s) {
				t.Fatalf("%s: clone differs", fm)
			}
			if up, err := Update(data, fm, s); err != nil && fm != JSON {
				t.Fatalf("%s: update: %v", fm, err)
			} else if err == nil && len(up) > 0 {
				if back, err := Decode(up, fm, "fuzz"); err != nil || !Equal(back, s) {
					t.Fatalf("%s: update does not decode back: %v\n%s", fm, err, up)
				}
			}
			out, err := Encode(s, fm)
			if err != nil {
				continue // NaN or infinity in JSON
			}
			back, err := Decode(out, fm, "fuzz")
			if err != nil && len(out) > 0 {
				t.Fatalf("%s: re-decode: %v\n%s", fm, err, out)
			}
			if len(out) > 0 && !Equal(back, s) {
				t.Fatalf("%s: round trip differs\n%s", fm, out)
			}
		}
	})
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`)

// FuzzValidateName checks ValidateName against the rule as a regexp.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"qwen-7b", "", ".x", "-x", "a b", "é", "x\x00", "a.b_c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName(name)
		if (err == nil) != nameRE.MatchString(name) {
			t.Fatalf("ValidateName(%q) = %v, rule says %v", name, err, nameRE.MatchString(name))
		}
	})
}

// FuzzParseHelp: any --help text parses without panicking, and a flag
// the parser reports is one that appears in the text.
func FuzzParseHelp(f *testing.F) {
	f.Add(recordedHelp[:600])
	f.Add("-fa,   --flash-attn [on|off|auto]       x\n--no-x\n-a, , --b")
	f.Fuzz(func(t *testing.T, help string) {
		fl := ParseHelp(help)
		for _, name := range fl.List() {
			if !strings.Contains(help, name) {
				t.Fatalf("flag %q not in the text", name)
			}
		}
	})
}
