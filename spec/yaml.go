package spec

import (
	"bytes"
	"errors"
	"math"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 64

// parseYAML parses YAML (and JSON, a subset the same parser reads with
// positions) into a node tree. A nil node with no error means the file
// holds no document.
func parseYAML(data []byte, e *errs) *node {
	// the YAML parser miscounts lines after a comment ending in CRLF
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	if at, deep := yamlTooDeep(data); deep {
		e.add(at, "", "nesting too deep or too many values for a spec")
		return nil
	}
	f, err := parseYAMLFile(data)
	if err != nil {
		e.add(yamlErrPos(err), "", "%s", yamlErrMsg(err))
		return nil
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		switch d.Body.(type) {
		case *ast.CommentGroupNode, *ast.CommentNode:
			continue
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil
	}
	if len(docs) > 1 {
		e.add(tokPos(docs[1].Body.GetToken()), "", "more than one document; a spec file holds one instance")
		return nil
	}
	return yamlNode(docs[0].Body, e, 0)
}

// parseYAMLFile parses with comments; the parser is guarded against panics
// because a crash on hostile input would take the daemon down.
func parseYAMLFile(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, errors.New("cannot parse YAML")
		}
	}()
	return parser.ParseBytes(data, parser.ParseComments, parser.AllowDuplicateMapKey())
}

// maxTokens bounds a YAML spec's size in tokens: the parser slows down
// quadratically with the number of keys, and a full spec needs about a
// thousand.
const maxTokens = 10000

// maxIndent bounds the column of a block structure's first token.
const maxIndent = 512

// yamlTooDeep finds nesting deeper, or a file larger, than a spec can
// need, with the linear
// lexer, before the parser (which is slow on deep nesting) sees it.
func yamlTooDeep(data []byte) (at pos, deep bool) {
	defer func() {
		if recover() != nil {
			at, deep = pos{}, false // let the parser report it
		}
	}()
	depth, line := 0, 0
	toks := lexer.Tokenize(string(data))
	if len(toks) > maxTokens {
		return tokPos(toks[maxTokens]), true
	}
	for _, tk := range toks {
		p := tokPos(tk)
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
		case token.SequenceEndType, token.MappingEndType:
			depth = max(0, depth-1)
		}
		first := p.Line != line
		line = p.Line
		if depth > maxDepth || (first || tk.Type == token.SequenceEntryType) && p.Col > maxIndent {
			return p, true
		}
	}
	return pos{}, false
}

func tokPos(t *token.Token) pos {
	if t == nil || t.Position == nil {
		return pos{}
	}
	return pos{t.Position.Line, t.Position.Column}
}

func yamlErrPos(err error) pos {
	var se *yaml.SyntaxError
	if errors.As(err, &se) {
		return tokPos(se.Token)
	}
	return pos{}
}

func yamlErrMsg(err error) string {
	var se *yaml.SyntaxError
	if errors.As(err, &se) {
		return "syntax error: " + se.Message
	}
	return "syntax error: " + strings.SplitN(err.Error(), "\n", 2)[0]
}

func yamlNode(n ast.Node, e *errs, depth int) *node {
	if depth > maxDepth {
		e.add(tokPos(n.GetToken()), "", "nesting too deep")
		return nil
	}
	at := tokPos(n.GetToken())
	switch v := n.(type) {
	case *ast.NullNode:
		return &node{kind: kNull, at: at}
	case *ast.StringNode:
		return &node{kind: kString, at: at, str: v.Value}
	case *ast.LiteralNode:
		if v.Value == nil {
			return &node{kind: kString, at: at}
		}
		return &node{kind: kString, at: at, str: v.Value.Value}
	case *ast.IntegerNode:
		switch i := v.Value.(type) {
		case int64:
			return &node{kind: kInt, at: at, i: i}
		case uint64:
			if i > math.MaxInt64 {
				e.add(at, "", "integer %d out of range", i)
				return nil
			}
			return &node{kind: kInt, at: at, i: int64(i)}
		}
		e.add(at, "", "cannot read integer %q", v.Token.Value)
		return nil
	case *ast.FloatNode:
		return &node{kind: kFloat, at: at, f: v.Value}
	case *ast.InfinityNode:
		return &node{kind: kFloat, at: at, f: v.Value}
	case *ast.NanNode:
		return &node{kind: kFloat, at: at, f: math.NaN()}
	case *ast.BoolNode:
		return &node{kind: kBool, at: at, b: v.Value}
	case *ast.SequenceNode:
		out := &node{kind: kList, at: at}
		for _, it := range v.Values {
			c := yamlNode(it, e, depth+1)
			if c == nil {
				return nil
			}
			out.items = append(out.items, c)
		}
		return out
	case *ast.MappingNode:
		return yamlMapping(v.Values, at, e, depth)
	case *ast.MappingValueNode:
		return yamlMapping([]*ast.MappingValueNode{v}, at, e, depth)
	case *ast.AnchorNode:
		return yamlNode(v.Value, e, depth+1)
	case *ast.AliasNode:
		e.add(at, "", "YAML aliases are not supported in spec files")
		return nil
	case *ast.TagNode:
		e.add(at, "", "YAML tags are not supported in spec files")
		return nil
	}
	e.add(at, "", "unsupported YAML value %s", n.Type())
	return nil
}

func yamlMapping(values []*ast.MappingValueNode, at pos, e *errs, depth int) *node {
	out := &node{kind: kMap, at: at}
	if len(values) > 0 {
		out.at = tokPos(values[0].Key.GetToken())
	}
	ok := true
	for _, mv := range values {
		kat := tokPos(mv.Key.GetToken())
		if mv.Key.IsMergeKey() {
			e.add(kat, "", "YAML merge keys are not supported in spec files")
			return nil
		}
		var key string
		switch k := mv.Key.(type) {
		case *ast.StringNode:
			key = k.Value
		case ast.ScalarNode:
			key = k.GetToken().Value
		default:
			e.add(kat, "", "a key must be a plain string")
			ok = false
			continue
		}
		if prev := out.lookup(key); prev != nil {
			e.add(kat, key, "duplicate key %q (first at line %d)", key, prev.at.Line)
			ok = false
			continue
		}
		var val *node
		if mv.Value == nil {
			val = &node{kind: kNull, at: kat}
		} else if val = yamlNode(mv.Value, e, depth+1); val == nil {
			return nil
		}
		if val.kind == kNull {
			val.at = kat
		}
		out.put(&entry{key: key, at: kat, val: val})
	}
	_ = ok // duplicates are reported; the rest of the mapping is still checked
	return out
}
