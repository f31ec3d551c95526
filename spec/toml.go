package spec

import (
	"errors"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlParser turns TOML into a node tree with positions, using go-toml's
// AST parser. Tables and dotted keys become nested mapping nodes; a key or
// table defined twice is a duplicate-key error.
type tomlParser struct {
	p    unstable.Parser
	data []byte
	e    *errs
	// explicit records the tables opened by a [header], to reject a
	// second [header] of the same table.
	explicit map[*node]bool
	lines    []int // offsets of line starts
	// inline records inline tables, which TOML forbids extending.
	inline map[*node]bool
}

// parseTOML returns nil when the file holds nothing or on a syntax error.
func parseTOML(data []byte, e *errs) (root *node) {
	t := &tomlParser{data: data, e: e, explicit: map[*node]bool{}, inline: map[*node]bool{}}
	defer func() {
		if r := recover(); r != nil {
			e.add(pos{}, "", "syntax error: cannot parse TOML")
			root = nil
		}
	}()
	t.lines = lineStarts(data)
	t.p.Reset(data)
	root = &node{kind: kMap, at: pos{1, 1}}
	cur := root
	empty := true
	for t.p.NextExpression() {
		ex := t.p.Expression()
		switch ex.Kind {
		case unstable.KeyValue:
			empty = false
			t.keyValue(cur, ex, 0)
		case unstable.Table:
			empty = false
			cur = t.table(root, ex)
		case unstable.ArrayTable:
			empty = false
			_, ps := t.keyPath(ex.Key())
			at := pos{}
			if len(ps) > 0 {
				at = ps[0]
			}
			e.add(at, "", "arrays of tables are not supported in spec files")
			cur = &node{kind: kMap} // keep parsing, discard its keys
		}
	}
	if err := t.p.Error(); err != nil {
		var pe *unstable.ParserError
		at := pos{}
		msg := err.Error()
		if errors.As(err, &pe) {
			at = t.offsetPos(pe.Highlight)
			msg = pe.Message
		}
		e.add(at, "", "syntax error: %s", msg)
		return nil
	}
	if empty {
		return nil
	}
	return root
}

func (t *tomlParser) pos(r unstable.Range) pos {
	if int(r.Offset) > len(t.data) {
		return pos{}
	}
	return posOf(t.data, t.lines, int(r.Offset))
}

// offsetPos locates b, a sub-slice of the input, without trusting it to be one.
func (t *tomlParser) offsetPos(b []byte) pos {
	if b == nil {
		return pos{}
	}
	off := cap(t.data) - cap(b)
	if off < 0 || off > len(t.data) {
		return pos{}
	}
	return t.pos(unstable.Range{Offset: uint32(off)})
}

// keyPath returns the parts of a (possibly dotted) key and each part's position.
func (t *tomlParser) keyPath(it unstable.Iterator) ([]string, []pos) {
	var parts []string
	var ps []pos
	for it.Next() {
		k := it.Node()
		parts = append(parts, string(k.Data))
		ps = append(ps, t.pos(k.Raw))
	}
	return parts, ps
}

// descend walks or creates the mapping for parts[:len-1] below m.
func (t *tomlParser) descend(m *node, parts []string, ps []pos) *node {
	for i, p := range parts {
		e := m.lookup(p)
		if e == nil {
			c := &node{kind: kMap, at: ps[i]}
			m.put(&entry{key: p, at: ps[i], val: c})
			m = c
			continue
		}
		if e.val.kind != kMap || t.inline[e.val] {
			t.e.add(ps[i], strings.Join(parts[:i+1], "."), "duplicate key %q (first at line %d)", strings.Join(parts[:i+1], "."), e.at.Line)
			return nil
		}
		m = e.val
	}
	return m
}

func (t *tomlParser) table(root *node, ex *unstable.Node) *node {
	parts, ps := t.keyPath(ex.Key())
	m := t.descend(root, parts, ps)
	if m == nil {
		return &node{kind: kMap}
	}
	if t.explicit[m] {
		t.e.add(ps[0], strings.Join(parts, "."), "duplicate table [%s]", strings.Join(parts, "."))
		return &node{kind: kMap}
	}
	t.explicit[m] = true
	return m
}

func (t *tomlParser) keyValue(m *node, ex *unstable.Node, depth int) {
	parts, ps := t.keyPath(ex.Key())
	if len(parts) == 0 {
		return
	}
	last := len(parts) - 1
	m = t.descend(m, parts[:last], ps[:last])
	if m == nil {
		return
	}
	key := parts[last]
	if prev := m.lookup(key); prev != nil {
		t.e.add(ps[last], key, "duplicate key %q (first at line %d)", strings.Join(parts, "."), prev.at.Line)
		return
	}
	v := t.value(ex.Value(), depth+1)
	if v == nil {
		return
	}
	m.put(&entry{key: key, at: ps[last], val: v})
}

func (t *tomlParser) value(v *unstable.Node, depth int) *node {
	at := t.pos(v.Raw)
	if depth > maxDepth {
		t.e.add(at, "", "nesting too deep")
		return nil
	}
	switch v.Kind {
	case unstable.String:
		return &node{kind: kString, at: at, str: string(v.Data)}
	case unstable.Bool:
		return &node{kind: kBool, at: at, b: string(v.Data) == "true"}
	case unstable.Integer:
		i, err := strconv.ParseInt(string(v.Data), 0, 64)
		if err != nil {
			t.e.add(at, "", "integer %s out of range", v.Data)
			return nil
		}
		return &node{kind: kInt, at: at, i: i}
	case unstable.Float:
		f, err := strconv.ParseFloat(strings.ReplaceAll(string(v.Data), "_", ""), 64)
		if err != nil {
			t.e.add(at, "", "cannot read number %s", v.Data)
			return nil
		}
		return &node{kind: kFloat, at: at, f: f}
	case unstable.Array:
		out := &node{kind: kList, at: at}
		it := v.Children()
		for it.Next() {
			c := t.value(it.Node(), depth+1)
			if c == nil {
				return nil
			}
			out.items = append(out.items, c)
		}
		return out
	case unstable.InlineTable:
		out := &node{kind: kMap, at: at}
		it := v.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				t.keyValue(out, kv, depth+1)
			}
		}
		t.inline[out] = true
		return out
	}
	t.e.add(at, "", "dates and times are not supported in spec files")
	return nil
}
