// Package spec owns the llamactl instance spec: the Spec type, strict
// decoding of YAML, TOML and JSON with file:line:col errors, validation,
// the name rule, llama-server argv building, the canonical hash and
// encoding back in a file's own format.
//
// A Spec field is a pointer (or a nil slice/map) so that "absent" and
// "present with the zero value" differ: a temperature of 0 written in a
// file is a real setting and is passed to llama-server.
package spec

//go:generate go run ./internal/gen -in testdata/llamactl-v0.2.0.swagger.yaml -out spec_gen.go

import (
	"slices"
	"strings"
)

// Format is a spec file's encoding.
type Format string

// The formats a spec file can be written in.
const (
	YAML Format = "yaml"
	TOML Format = "toml"
	JSON Format = "json"
)

// Desired states.
const (
	StateRunning = "running"
	StateStopped = "stopped"
)

// DesiredState returns the spec's state, StateRunning when unset.
func (s *Spec) DesiredState() string {
	if s.State == "" {
		return StateRunning
	}
	return s.State
}

// Aliases returns the names alias gives the model (llama-server takes a
// comma-separated list), blanks trimmed, empty ones and repeats left out.
func (s *Spec) Aliases() []string {
	if s == nil || s.Alias == nil {
		return nil
	}
	var out []string
	for a := range strings.SplitSeq(*s.Alias, ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
