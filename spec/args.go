package spec

import (
	"math"
	"strconv"
	"strings"
)

// Args builds llama-server's argv (without the binary, --host and --port,
// which the supervisor adds) in a deterministic order: the option table's
// order, then extra_args verbatim. flags may be nil (the built-in
// knowledge of the recorded llama-server is used).
//
// A key present in the file is emitted even with a zero value. A boolean
// is a bare flag when true; when false, its negative form (--no-X, or the
// positive flag for a no_X key) if the binary has one, else nothing. A
// boolean whose flag takes a value (--flash-attn on|off|auto in newer
// builds) gets "on" or "off". Lists repeat their flag.
func (s *Spec) Args(flags *Flags) ([]string, error) {
	var argv []string
	e := &errs{file: s.file()}
	for _, o := range options {
		if o.group != gServer || !o.present(s) {
			continue
		}
		flag := flags.pick(o.flags)
		if flag == "" {
			e.add(s.keyPos(o.key), o.key, "%s: llama-server version %s has no %s flag (option removed)", o.key, flags.version(), o.flags[0])
			continue
		}
		v := o.field(s)
		switch o.kind {
		case oString:
			str := *v.Interface().(*string)
			if o.pair {
				parts := strings.Fields(str)
				if len(parts) != 2 {
					e.add(s.valPos(o.key), o.key, "%s: want two values \"START END\", got %q", o.key, str)
					continue
				}
				argv = append(argv, flag, parts[0], parts[1])
				continue
			}
			argv = append(argv, flag, str)
		case oInt:
			argv = append(argv, flag, strconv.Itoa(*v.Interface().(*int)))
		case oFloat:
			x := *v.Interface().(*float64)
			if math.IsNaN(x) || math.IsInf(x, 0) {
				e.add(s.valPos(o.key), o.key, "%s: want a finite number", o.key)
				continue
			}
			argv = append(argv, flag, strconv.FormatFloat(x, 'f', -1, 64))
		case oBool:
			argv = appendBool(argv, flags, o, flag, *v.Interface().(*bool))
		case oStrings:
			for _, item := range v.Interface().([]string) {
				argv = append(argv, flag, item)
			}
		}
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return append(argv, s.ExtraArgs...), nil
}

func appendBool(argv []string, flags *Flags, o *option, flag string, b bool) []string {
	if flags.TakesValue(flag) {
		if b {
			return append(argv, flag, "on")
		}
		return append(argv, flag, "off")
	}
	if b {
		return append(argv, flag)
	}
	if off := flags.pick(o.off); off != "" && !flags.TakesValue(off) {
		return append(argv, off)
	}
	return argv
}

// FlagFor returns the llama-server flag the spec key becomes with the
// given binary (nil: the recorded build), or "" when the key is not a
// llama-server option or the binary lacks its flag.
func FlagFor(key string, flags *Flags) string {
	o := byKey[key]
	if o == nil || o.group != gServer {
		return ""
	}
	return flags.pick(o.flags)
}

// Keys returns every spec key in table order.
func Keys() []string {
	out := make([]string, len(options))
	for i, o := range options {
		out[i] = o.key
	}
	return out
}
