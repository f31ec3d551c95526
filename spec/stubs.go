package spec

// This file holds the package's exported API as agreed with the other
// packages. Bodies are replaced by the real implementation.

// FormatOf returns the format of a spec file by its extension
// (.yaml/.yml, .toml, .json); ok is false for any other file.
func FormatOf(path string) (f Format, ok bool) { panic("unimplemented") }

// Decode strictly decodes one spec. file is used only in error messages.
// Unknown keys (with a nearest-key suggestion), wrong types and duplicate
// keys are errors located by line and column; the error is an ErrorList.
func Decode(data []byte, f Format, file string) (*Spec, error) { panic("unimplemented") }

// ValidateName checks the instance name rule: 1-64 of [A-Za-z0-9._-],
// not starting with '.' or '-'.
func ValidateName(name string) error { panic("unimplemented") }

// Validate checks the spec for the instance called name (the file stem):
// name rule, name key equal to the stem, ranges, exactly one model source,
// state value. flags may be nil; when given, options whose flag the binary
// lacks are errors naming the option and flags.Version.
func (s *Spec) Validate(name string, flags *Flags) error { panic("unimplemented") }

// Flags is what one llama-server binary accepts, parsed from its --help.
type Flags struct {
	Version string // from --version, set by the caller; may be empty
}

// ParseHelp parses llama-server --help output.
func ParseHelp(help string) *Flags { panic("unimplemented") }

// Args builds llama-server's argv (without the binary, --host and --port,
// which the supervisor adds) in a deterministic order. flags may be nil
// (the built-in knowledge of the recorded llama-server is used).
func (s *Spec) Args(flags *Flags) ([]string, error) { panic("unimplemented") }

// Hash is the canonical hash of what a restart depends on: binary, argv,
// env, host and an explicit port. Key order and comments do not change it.
func (s *Spec) Hash(binary string, flags *Flags) string { panic("unimplemented") }

// Encode writes s in format f with a stable key order.
func Encode(s *Spec, f Format) ([]byte, error) { panic("unimplemented") }

// Update re-encodes orig (a file in format f) so that it holds s, keeping
// comments and key order of orig where it can (YAML); keys absent from s
// are removed, new keys are appended.
func Update(orig []byte, f Format, s *Spec) ([]byte, error) { panic("unimplemented") }

// Redacted returns a copy of s with secrets (api_key, hf_token) removed,
// for showing through the API.
func (s *Spec) Redacted() *Spec { panic("unimplemented") }

// Clone returns a deep copy of s.
func (s *Spec) Clone() *Spec { panic("unimplemented") }
