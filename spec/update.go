package spec

import (
	"bytes"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Update re-encodes orig (a file in format f) so that it holds s, keeping
// comments and key order of orig where it can (YAML); keys absent from s
// are removed, new keys are appended. TOML and JSON are re-encoded.
//
// For YAML, a top-level key whose value is unchanged keeps its exact text;
// a changed scalar keeps its trailing comment; comment lines above a key
// stay with it. When orig is not a plain block mapping, or the result
// would not decode back to s, the file is re-encoded instead.
func Update(orig []byte, f Format, s *Spec) ([]byte, error) {
	if f == YAML {
		if out, ok := updateYAML(orig, s); ok {
			return out, nil
		}
	}
	return Encode(s, f)
}

// block is one top-level key of a YAML file: its comment lines above and
// its own lines.
type block struct {
	key  string
	lead []string
	body []string
}

func updateYAML(orig []byte, s *Spec) ([]byte, bool) {
	old, e := decode(orig, YAML, "")
	if old == nil || len(e.list) > 0 {
		return nil, false
	}
	if bytes.Contains(orig, []byte("\r")) {
		return nil, false // keep line handling simple: re-encode
	}
	f, err := parseYAMLFile(orig)
	if err != nil || len(f.Docs) != 1 {
		return nil, false
	}
	m, ok := f.Docs[0].Body.(*ast.MappingNode)
	if !ok || m.IsFlowStyle {
		return nil, false
	}
	comments := map[string]string{}
	type keyLine struct {
		key  string
		line int
	}
	var keys []keyLine
	for _, mv := range m.Values {
		at := tokPos(mv.Key.GetToken())
		key := mv.Key.GetToken().Value
		if at.Col != 1 || (len(keys) > 0 && at.Line <= keys[len(keys)-1].line) || byKey[key] == nil {
			return nil, false
		}
		keys = append(keys, keyLine{key, at.Line})
		if c := mv.Value.GetComment(); c != nil && !strings.Contains(c.String(), "\n") {
			if _, scalar := mv.Value.(ast.ScalarNode); scalar {
				comments[key] = c.String()
			}
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	lines := strings.SplitAfter(string(orig), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if !strings.HasSuffix(lines[len(lines)-1], "\n") {
		lines[len(lines)-1] += "\n"
	}
	head := lines[:keys[0].line-1]
	blocks := make([]*block, len(keys))
	leads := make([][]string, len(keys)+1) // leads[len(keys)] is the foot
	for i, k := range keys {
		end := len(lines)
		if i+1 < len(keys) {
			end = keys[i+1].line - 1
		}
		body := lines[k.line-1 : end]
		// trailing comment and blank lines belong to the next key
		cut := len(body)
		for cut > 1 && isCommentLine(body[cut-1]) {
			cut--
		}
		blocks[i] = &block{key: k.key, body: body[:cut]}
		leads[i+1] = body[cut:]
	}
	for i, b := range blocks {
		b.lead = leads[i]
	}
	foot := leads[len(keys)]
	var out bytes.Buffer
	writeLines(&out, head)
	seen := map[string]bool{}
	for _, b := range blocks {
		seen[b.key] = true
		o := byKey[b.key]
		if !o.present(s) {
			continue
		}
		writeLines(&out, b.lead)
		if reflect.DeepEqual(o.field(old).Interface(), o.field(s).Interface()) {
			writeLines(&out, b.body)
			continue
		}
		var nb bytes.Buffer
		writeYAMLKey(&nb, s, o)
		text := nb.String()
		if c := comments[b.key]; c != "" && strings.Count(text, "\n") == 1 {
			text = strings.TrimSuffix(text, "\n") + "  " + c + "\n"
		}
		out.WriteString(text)
	}
	var added []*option
	for _, o := range options {
		if !seen[o.key] && o.present(s) {
			added = append(added, o)
		}
	}
	sort.SliceStable(added, func(i, j int) bool { return added[i].index < added[j].index })
	for _, o := range added {
		writeYAMLKey(&out, s, o)
	}
	writeLines(&out, foot)
	result := out.Bytes()
	if got, err := Decode(result, YAML, ""); err != nil || !Equal(got, s) {
		return nil, false
	}
	return result, true
}

// isCommentLine reports whether a line is blank or a comment starting in
// the first column (so it cannot be part of an indented value).
func isCommentLine(l string) bool {
	t := strings.TrimRight(l, " \t\r\n")
	return t == "" || strings.HasPrefix(t, "#")
}

func writeLines(b *bytes.Buffer, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
	}
}
