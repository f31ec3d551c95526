package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDeepBody checks that no nesting depth crashes the fake: deeper than
// maxDepth is malformed, brackets in strings do not count.
func TestDeepBody(t *testing.T) {
	deep := append([]byte(`{"model":"m","x":`), bytes.Repeat([]byte("["), 4<<20)...)
	if _, ok := parseGenRequest(deep, "d", 8); ok {
		t.Fatal("4M-deep body accepted")
	}
	nested := `{"model":"m","x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `,"s":"` + strings.Repeat("[", 2*maxDepth) + `"}`
	if g, ok := parseGenRequest([]byte(nested), "d", 8); !ok || g.model != "m" {
		t.Fatalf("body %d deep with brackets in a string: ok=%v model=%q", maxDepth, ok, g.model)
	}
}
