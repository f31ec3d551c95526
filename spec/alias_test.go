package spec

import (
	"slices"
	"testing"
)

func TestAliases(t *testing.T) {
	for in, want := range map[string][]string{
		"qwen":           {"qwen"},
		"m1,m2":          {"m1", "m2"},
		" a , b,,a , c ": {"a", "b", "c"},
		"":               nil,
		" , ":            nil,
	} {
		s := &Spec{Alias: &in}
		if got := s.Aliases(); !slices.Equal(got, want) {
			t.Errorf("Aliases(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (&Spec{}).Aliases(); got != nil {
		t.Errorf("no alias: %q", got)
	}
	if got := (*Spec)(nil).Aliases(); got != nil {
		t.Errorf("nil spec: %q", got)
	}
}
