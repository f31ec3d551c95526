package spec

import (
	"fmt"
	"math"
)

// kind is the type of a value in a parsed spec file.
type kind int

const (
	kNull kind = iota
	kString
	kInt
	kFloat
	kBool
	kList
	kMap
)

func (k kind) String() string {
	switch k {
	case kString:
		return "string"
	case kInt:
		return "integer"
	case kFloat:
		return "number"
	case kBool:
		return "boolean"
	case kList:
		return "list"
	case kMap:
		return "mapping"
	}
	return "null"
}

// pos is a 1-based line and column; zero when unknown.
type pos struct{ Line, Col int }

// node is one value of a parsed file, whatever its format, with the
// position where it starts. It is the single input of the decoder, so
// unknown keys, type errors and duplicates are found the same way for
// YAML, TOML and JSON.
type node struct {
	kind  kind
	at    pos
	str   string
	i     int64
	f     float64
	b     bool
	items []*node
	keys  []*entry
}

// entry is one key of a mapping node.
type entry struct {
	key string
	at  pos
	val *node
}

// lookup returns the entry for key, or nil.
func (n *node) lookup(key string) *entry {
	for _, e := range n.keys {
		if e.key == key {
			return e
		}
	}
	return nil
}

// asInt returns the node as an integer; floats with an integral value
// are accepted (JSON writes 3.0 for 3 in some encoders).
func (n *node) asInt() (int, bool) {
	switch n.kind {
	case kInt:
		if int64(int(n.i)) != n.i {
			return 0, false // does not fit this platform's int
		}
		return int(n.i), true
	case kFloat:
		if n.f != math.Trunc(n.f) || math.IsInf(n.f, 0) || n.f > 1<<53 || n.f < -(1<<53) {
			return 0, false
		}
		return int(n.f), true
	}
	return 0, false
}

// asFloat returns the node as a float (integers are accepted).
func (n *node) asFloat() (float64, bool) {
	switch n.kind {
	case kInt:
		return float64(n.i), true
	case kFloat:
		return n.f, true
	}
	return 0, false
}

// describe names the node's type for error messages.
func (n *node) describe() string {
	switch n.kind {
	case kString:
		return fmt.Sprintf("string %q", clip(n.str))
	case kInt:
		return fmt.Sprintf("integer %d", n.i)
	case kFloat:
		return fmt.Sprintf("number %g", n.f)
	case kBool:
		return fmt.Sprintf("boolean %t", n.b)
	}
	return n.kind.String()
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// errs collects located errors for one file.
type errs struct {
	file string
	list ErrorList
}

func (e *errs) add(at pos, key, format string, args ...any) {
	e.list = append(e.list, &Error{File: e.file, Line: at.Line, Col: at.Col, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return e.list
}
