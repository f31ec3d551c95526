package spec

import (
	"bytes"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Update re-encodes orig (a file in format f) so that it holds s, keeping
// comments and key order of orig where it can (YAML, and TOML written as
// top-level "key = value" lines); keys absent from s are removed, new keys
// are appended. JSON, which has no comments, is re-encoded.
//
// A top-level key whose value is unchanged keeps its exact text;
// a changed scalar keeps its trailing comment; comment lines above a key
// stay with it. When orig is not a plain block mapping, or the result
// would not decode back to s, the file is re-encoded instead.
//
// A byte order mark at the start of orig is kept, and so are Windows line
// endings (a file that mixes them with bare LF gets CRLF throughout).
func Update(orig []byte, f Format, s *Spec) ([]byte, error) {
	if rest, ok := bytes.CutPrefix(orig, utf8BOM); ok {
		out, err := Update(rest, f, s)
		if err != nil {
			return nil, err
		}
		return append(append([]byte{}, utf8BOM...), out...), nil
	}
	if bytes.Contains(orig, crlf) {
		lf := bytes.ReplaceAll(orig, crlf, []byte("\n"))
		if !bytes.Contains(lf, []byte("\r")) { // else mixed: re-encoded below
			out, err := Update(lf, f, s)
			if err != nil {
				return nil, err
			}
			return bytes.ReplaceAll(out, []byte("\n"), crlf), nil
		}
	}
	switch f {
	case YAML:
		if out, ok := updateYAML(orig, s); ok {
			return out, nil
		}
	case TOML:
		if out, ok := updateTOML(orig, s); ok {
			return out, nil
		}
	}
	return Encode(s, f)
}

var crlf = []byte("\r\n")

// block is one top-level key of a YAML file: its comment lines above and
// its own lines.
type block struct {
	key  string
	lead []string
	body []string
}

// keyLine is a top-level key and the line it starts on.
type keyLine struct {
	key  string
	line int
}

func updateYAML(orig []byte, s *Spec) ([]byte, bool) {
	old, e := decode(orig, YAML, "")
	if old == nil || len(e.list) > 0 || bytes.Contains(orig, []byte("\r")) {
		return nil, false
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
	var keys []keyLine
	for _, mv := range m.Values {
		at := tokPos(mv.Key.GetToken())
		key := mv.Key.GetToken().Value
		if at.Col != 1 {
			return nil, false
		}
		keys = append(keys, keyLine{key, at.Line})
		if c := mv.Value.GetComment(); c != nil && !strings.Contains(c.String(), "\n") {
			if _, scalar := mv.Value.(ast.ScalarNode); scalar {
				comments[key] = c.String()
			}
		}
	}
	return splice(orig, YAML, old, s, keys, comments, writeYAMLKey)
}

// updateTOML keeps comments of a TOML file made of top-level "key =
// value" lines (as Encode writes them); a file with [tables] or dotted
// keys is re-encoded.
func updateTOML(orig []byte, s *Spec) (out []byte, ok bool) {
	old, e := decode(orig, TOML, "")
	if old == nil || len(e.list) > 0 || bytes.Contains(orig, []byte("\r")) {
		return nil, false
	}
	defer func() {
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	lines := lineStarts(orig)
	var p unstable.Parser
	p.Reset(orig)
	comments := map[string]string{}
	var keys []keyLine
	for p.NextExpression() {
		ex := p.Expression()
		if ex.Kind != unstable.KeyValue {
			return nil, false
		}
		it := ex.Key()
		var parts []*unstable.Node
		for it.Next() {
			parts = append(parts, it.Node())
		}
		if len(parts) != 1 {
			return nil, false
		}
		at := posOf(orig, lines, int(parts[0].Raw.Offset))
		if at.Col != 1 {
			return nil, false
		}
		key := string(parts[0].Data)
		keys = append(keys, keyLine{key, at.Line})
		if v := ex.Value(); v.Raw.Length > 0 && v.Kind != unstable.Array && v.Kind != unstable.InlineTable {
			rest := orig[v.Raw.Offset+v.Raw.Length:]
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				rest = rest[:i]
			}
			if c := strings.TrimSpace(string(rest)); strings.HasPrefix(c, "#") {
				comments[key] = c
			}
		}
	}
	if p.Error() != nil {
		return nil, false
	}
	return splice(orig, TOML, old, s, keys, comments, writeTOMLKey)
}

// splice rewrites orig, whose top-level keys start at the given lines in
// order, to hold s: unchanged keys keep their text, changed ones are
// re-encoded with their trailing comment, absent ones are dropped with
// the comment lines above them, new ones are appended before the final
// comment lines. ok is false when the result would not decode to s.
func splice(orig []byte, f Format, old, s *Spec, keys []keyLine, comments map[string]string, write func(*bytes.Buffer, *Spec, *option)) ([]byte, bool) {
	if len(keys) == 0 {
		return nil, false
	}
	for i, k := range keys {
		if byKey[k.key] == nil || (i > 0 && k.line <= keys[i-1].line) {
			return nil, false
		}
	}
	lines := strings.SplitAfter(string(orig), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if !strings.HasSuffix(lines[len(lines)-1], "\n") {
		lines[len(lines)-1] += "\n"
	}
	if keys[len(keys)-1].line > len(lines) {
		return nil, false
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
		write(&nb, s, o)
		text := nb.String()
		if c := comments[b.key]; c != "" && strings.Count(text, "\n") == 1 {
			text = strings.TrimSuffix(text, "\n") + "  " + c + "\n"
		}
		out.WriteString(text)
	}
	for _, o := range options {
		if !seen[o.key] && o.present(s) {
			write(&out, s, o)
		}
	}
	writeLines(&out, leads[len(keys)])
	result := out.Bytes()
	if got, err := Decode(result, f, ""); err != nil || !Equal(got, s) {
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
