package spec

import (
	"strings"
	"testing"
	"time"
)

// TestHostileInputIsFast: deep nesting and large flat files are rejected
// or decoded quickly in every format. The bound is loose (a loaded CI
// machine) but far below the minutes a quadratic parse of these takes.
func TestHostileInputIsFast(t *testing.T) {
	n := 200000
	inputs := map[string]string{
		"flow lists":    "a: " + strings.Repeat("[", n),
		"flow maps":     "a: " + strings.Repeat("{a: ", n),
		"block seqs":    strings.Repeat("- ", n) + "x",
		"indent":        "a:\n" + strings.Repeat(" ", n) + "b: 1\n",
		"json lists":    `{"a": ` + strings.Repeat("[", n),
		"toml arrays":   "a = " + strings.Repeat("[", n),
		"toml tables":   "a = " + strings.Repeat("{a = ", n),
		"many keys":     strings.Repeat("k: 1\n", 50000),
		"many toml":     strings.Repeat("k = 1\n", 50000),
		"too large":     strings.Repeat("#", MaxSize+1),
		"deep unclosed": "a: [" + strings.Repeat("[\"]\",", 100) + "]",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			for _, f := range []Format{YAML, JSON, TOML} {
				start := time.Now()
				s, err := Decode([]byte(in), f, "x")
				if err == nil {
					t.Errorf("%s: decoded %+v", f, s)
				}
				if l, _ := AsList(err); len(l) > maxErrors+1 {
					t.Errorf("%s: %d errors", f, len(l))
				}
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("%s: took %v", f, d)
				}
			}
		})
	}
}
