package spec

import (
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
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
	idx   map[string]*entry // keys by name, for large mappings
}

// entry is one key of a mapping node.
type entry struct {
	key string
	at  pos
	val *node
}

// lookup returns the entry for key, or nil.
func (n *node) lookup(key string) *entry {
	return n.idx[key]
}

// put appends an entry to a mapping node.
func (n *node) put(e *entry) {
	if n.idx == nil {
		n.idx = map[string]*entry{}
	}
	n.idx[e.key] = e
	n.keys = append(n.keys, e)
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

// maxErrors bounds the errors reported for one file.
const maxErrors = 50

// add records an error. In a file, a problem of the whole file is placed
// at 1:1 so that every line reads file:line:col: message.
func (e *errs) add(at pos, key, format string, args ...any) {
	if at.Line == 0 && e.file != "" {
		at = pos{1, 1}
	}
	if len(e.list) > maxErrors {
		return
	}
	if len(e.list) == maxErrors {
		e.list = append(e.list, &Error{File: e.file, Line: at.Line, Col: at.Col, Msg: "too many errors"})
		return
	}
	e.list = append(e.list, &Error{File: e.file, Line: at.Line, Col: at.Col, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return e.list
}

// lineStarts returns the offsets at which data's lines start.
func lineStarts(data []byte) []int {
	lines := []int{0}
	for i, c := range data {
		if c == '\n' {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// posOf converts a byte offset to a 1-based line and column, counting
// columns in characters as the YAML parser does.
func posOf(data []byte, lines []int, off int) pos {
	off = max(0, min(off, len(data)))
	line := sort.Search(len(lines), func(i int) bool { return lines[i] > off }) - 1
	return pos{line + 1, utf8.RuneCount(data[lines[line]:off]) + 1}
}
