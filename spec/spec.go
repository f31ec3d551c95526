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
