package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Encode writes s in format f with a stable key order: the option table's
// order (supervision keys first, then llama-server options by key), env
// entries sorted. Decode(Encode(s)) equals s.
func Encode(s *Spec, f Format) ([]byte, error) {
	var b bytes.Buffer
	switch f {
	case YAML:
		for _, o := range options {
			if o.present(s) {
				writeYAMLKey(&b, s, o)
			}
		}
	case TOML:
		for _, o := range options {
			if o.present(s) {
				writeTOMLKey(&b, s, o)
			}
		}
	case JSON:
		if err := writeJSON(&b, s); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("encode spec: unknown format %q", string(f))
	}
	return b.Bytes(), nil
}

// formatFloat writes x so that it reads back as a float with the same
// value: always with a '.' or an exponent.
func formatFloat(x float64) string {
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

var (
	plainYAML = regexp.MustCompile(`^[A-Za-z0-9_/][A-Za-z0-9_./@+-]*$`)
	yamlWords = map[string]bool{
		"true": true, "false": true, "yes": true, "no": true, "on": true, "off": true,
		"y": true, "n": true, "null": true, "~": true,
	}
)

// yamlString writes str plain when that cannot be read as anything but
// the same string, else double-quoted (JSON escapes are valid YAML).
func yamlString(str string) string {
	if plainYAML.MatchString(str) && !yamlWords[strings.ToLower(str)] && !looksNumeric(str) {
		return str
	}
	return jsonString(str)
}

func looksNumeric(s string) bool {
	t := strings.ReplaceAll(s, "_", "")
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseInt(t, 0, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseUint(t, 0, 64); err == nil {
		return true
	}
	// YAML 1.1 sexagesimal and other oddities start with a digit or sign
	// and contain ':'; plainYAML already excludes ':'.
	return strings.HasPrefix(t, ".") || strings.HasPrefix(t, "+") || strings.HasPrefix(t, "-")
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

func yamlFloat(x float64) string {
	switch {
	case math.IsNaN(x):
		return ".nan"
	case math.IsInf(x, 1):
		return ".inf"
	case math.IsInf(x, -1):
		return "-.inf"
	}
	return formatFloat(x)
}

func writeYAMLKey(b *bytes.Buffer, s *Spec, o *option) {
	v := o.field(s)
	b.WriteString(o.key)
	b.WriteByte(':')
	switch o.kind {
	case oPlain:
		fmt.Fprintf(b, " %s\n", yamlString(v.String()))
	case oString:
		fmt.Fprintf(b, " %s\n", yamlString(*v.Interface().(*string)))
	case oInt:
		fmt.Fprintf(b, " %d\n", *v.Interface().(*int))
	case oFloat:
		fmt.Fprintf(b, " %s\n", yamlFloat(*v.Interface().(*float64)))
	case oBool:
		fmt.Fprintf(b, " %t\n", *v.Interface().(*bool))
	case oStrings:
		b.WriteByte('\n')
		for _, item := range v.Interface().([]string) {
			fmt.Fprintf(b, "  - %s\n", yamlString(item))
		}
	case oEnv:
		b.WriteByte('\n')
		m := v.Interface().(map[string]string)
		for _, k := range sortedKeys(m) {
			fmt.Fprintf(b, "  %s: %s\n", yamlString(k), yamlString(m[k]))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var bareTOMLKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func tomlKey(k string) string {
	if bareTOMLKey.MatchString(k) {
		return k
	}
	return tomlString(k)
}

func tomlFloat(x float64) string {
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	}
	return formatFloat(x)
}

func writeTOMLKey(b *bytes.Buffer, s *Spec, o *option) {
	v := o.field(s)
	fmt.Fprintf(b, "%s = ", o.key)
	switch o.kind {
	case oPlain:
		b.WriteString(tomlString(v.String()))
	case oString:
		b.WriteString(tomlString(*v.Interface().(*string)))
	case oInt:
		fmt.Fprintf(b, "%d", *v.Interface().(*int))
	case oFloat:
		b.WriteString(tomlFloat(*v.Interface().(*float64)))
	case oBool:
		fmt.Fprintf(b, "%t", *v.Interface().(*bool))
	case oStrings:
		items := v.Interface().([]string)
		quoted := make([]string, len(items))
		for i, item := range items {
			quoted[i] = tomlString(item)
		}
		fmt.Fprintf(b, "[%s]", strings.Join(quoted, ", "))
	case oEnv:
		m := v.Interface().(map[string]string)
		var parts []string
		for _, k := range sortedKeys(m) {
			parts = append(parts, tomlKey(k)+" = "+tomlString(m[k]))
		}
		fmt.Fprintf(b, "{ %s }", strings.Join(parts, ", "))
	}
	b.WriteByte('\n')
}

func writeJSON(b *bytes.Buffer, s *Spec) error {
	b.WriteString("{")
	first := true
	for _, o := range options {
		if !o.present(s) {
			continue
		}
		v := o.field(s)
		var val any
		switch o.kind {
		case oPlain:
			val = v.String()
		case oFloat:
			x := *v.Interface().(*float64)
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("encode spec: %s: %v cannot be written in JSON", o.key, x)
			}
			val = json.RawMessage(formatFloat(x))
		default:
			val = v.Interface()
		}
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(val); err != nil {
			return fmt.Errorf("encode spec: %s: %w", o.key, err)
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(b, "\n  %s: %s", jsonString(o.key), bytes.TrimSuffix(vb.Bytes(), []byte("\n")))
	}
	b.WriteString("\n}\n")
	return nil
}
