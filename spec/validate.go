package spec

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ValidateName checks the instance name rule: 1-64 of [A-Za-z0-9._-],
// not starting with '.' or '-'.
func ValidateName(name string) error {
	if name == "" {
		return &Error{Msg: "name is empty"}
	}
	if len(name) > 64 {
		return &Error{Msg: fmt.Sprintf("name %q is longer than 64 characters", clip(name))}
	}
	if name[0] == '.' || name[0] == '-' {
		return &Error{Msg: fmt.Sprintf("name %q must not start with %q", name, name[0])}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return &Error{Msg: fmt.Sprintf("name %q has a character outside [A-Za-z0-9._-]", clip(name))}
		}
	}
	return nil
}

// Validate checks the spec for the instance called name (the file stem):
// name rule, name key equal to the stem, ranges, exactly one model source,
// state value, and that the binary has a flag for every option set. flags
// may be nil: the recorded llama-server build is assumed. Errors are an
// ErrorList located by line and column when s came from Decode.
func (s *Spec) Validate(name string, flags *Flags) error {
	e := &errs{file: s.file()}
	if err := ValidateName(name); err != nil {
		e.add(pos{}, "", "%s", err.(*Error).Msg)
	}
	if s.Name != "" || s.src != nil && hasKey(s, "name") {
		if err := ValidateName(s.Name); err != nil {
			e.add(s.valPos("name"), "name", "%s", err.(*Error).Msg)
		} else if s.Name != name {
			e.add(s.valPos("name"), "name", "name %q must equal the file name stem %q", s.Name, name)
		}
	}
	if s.State != "" && s.State != StateRunning && s.State != StateStopped {
		e.add(s.valPos("state"), "state", "state %q must be %q or %q", clip(s.State), StateRunning, StateStopped)
	}
	var sources []*option
	for _, o := range options {
		if !o.present(s) {
			continue
		}
		s.checkValue(o, e)
		if o.group == gServer && flags.pick(o.flags) == "" {
			e.add(s.keyPos(o.key), o.key, "%s: llama-server version %s has no %s flag (option removed)", o.key, flags.version(), o.flags[0])
		}
		if o.isModelSource(s) {
			sources = append(sources, o)
		}
	}
	switch {
	case len(sources) == 0:
		e.add(pos{}, "", "no model source: set one of model, hf_repo, model_url or a *_default preset (without one llama-server starts as a router)")
	case len(sources) > 1:
		// report at the later of the first two in the file
		slices.SortStableFunc(sources, func(a, b *option) int {
			pa, pb := s.keyPos(a.key), s.keyPos(b.key)
			return cmp.Or(cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Col, pb.Col))
		})
		e.add(s.keyPos(sources[1].key), sources[1].key, "more than one model source (%s and %s): keep exactly one", sources[0].key, sources[1].key)
	}
	sortErrors(e.list)
	return e.err()
}

// isListenFlag reports whether arg sets llama-server's listen address.
func isListenFlag(arg string) bool {
	name, _, _ := strings.Cut(arg, "=")
	return name == "--host" || name == "--port"
}

func hasKey(s *Spec, key string) bool {
	_, ok := s.src.keys[key]
	return ok
}

// checkValue checks one present option's value.
func (s *Spec) checkValue(o *option, e *errs) {
	v := o.field(s)
	at := s.valPos(o.key)
	switch o.kind {
	case oInt:
		i := *v.Interface().(*int)
		if o.hasMin && i < o.min {
			if o.hasMax {
				e.add(at, o.key, "%s: %d out of range %d-%d", o.key, i, o.min, o.max)
			} else {
				e.add(at, o.key, "%s: %d must be at least %d", o.key, i, o.min)
			}
		} else if o.hasMax && i > o.max {
			e.add(at, o.key, "%s: %d out of range %d-%d", o.key, i, o.min, o.max)
		}
	case oFloat:
		x := *v.Interface().(*float64)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			e.add(at, o.key, "%s: want a finite number", o.key)
		}
	case oString:
		str := *v.Interface().(*string)
		if strings.IndexByte(str, 0) >= 0 {
			e.add(at, o.key, "%s: contains a NUL byte", o.key)
		}
		if o.pair && len(strings.Fields(str)) != 2 {
			e.add(at, o.key, "%s: want two values \"START END\", got %q", o.key, clip(str))
		}
		if o.modelSource && strings.TrimSpace(str) == "" {
			e.add(at, o.key, "%s: is empty", o.key)
		}
	case oStrings:
		for _, item := range v.Interface().([]string) {
			if strings.IndexByte(item, 0) >= 0 {
				e.add(at, o.key, "%s: an item contains a NUL byte", o.key)
				break
			}
			if o.key == "extra_args" && isListenFlag(item) {
				e.add(at, o.key, "extra_args: %s is set by the supervisor; use the host and port keys", clip(item))
			}
		}
	case oEnv:
		for k, val := range v.Interface().(map[string]string) {
			full := o.key + "." + k
			if k == "" || strings.ContainsAny(k, "=\x00") {
				e.add(s.keyPos(full), full, "env: %q is not a valid variable name", k)
			}
			if strings.IndexByte(val, 0) >= 0 {
				e.add(s.valPos(full), full, "%s: contains a NUL byte", full)
			}
		}
	}
}

// sortErrors puts errors in file order (unlocated ones first), keeping
// the order of errors at the same place.
func sortErrors(l ErrorList) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && less(l[j], l[j-1]); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

func less(a, b *Error) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Col < b.Col
}

// ValidateFile reads, decodes (format by extension, name = file stem) and
// validates one spec file. The error is an ErrorList with every problem
// located file:line:col (as far as each can be located).
func ValidateFile(path string, flags *Flags) error {
	f, ok := FormatOf(path)
	if !ok {
		return ErrorList{{File: path, Msg: "not a spec file: want .yaml, .yml, .toml or .json"}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ErrorList{{File: path, Msg: fmt.Sprintf("read spec: %v", err)}}
	}
	s, e := decode(data, f, path)
	if s == nil {
		return e.err()
	}
	if len(e.list) == 0 {
		return s.Validate(Stem(path), flags)
	}
	// Report the keys that decoded too, except the model-source check,
	// which a key with a type error would falsely trip.
	if verr, ok := AsList(s.Validate(Stem(path), flags)); ok {
		for _, ve := range verr {
			if !strings.HasPrefix(ve.Msg, "no model source") {
				e.list = append(e.list, ve)
			}
		}
	}
	sortErrors(e.list)
	return e.err()
}

// Stem returns the instance name of a spec file: its base name without
// the extension.
func Stem(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// AsList returns err as an ErrorList when it is one.
func AsList(err error) (ErrorList, bool) {
	var l ErrorList
	ok := errors.As(err, &l)
	return l, ok
}
