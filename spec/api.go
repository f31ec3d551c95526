package spec

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one problem in a spec file, located by line and column
// (1-based; 0 when unknown). Error() prints "file:line:col: message".
type Error struct {
	File string
	Line int
	Col  int
	Key  string // the offending key, when there is one
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// ErrInvalid is matched (errors.Is) by every decoding and validation error.
var ErrInvalid = errors.New("invalid spec")

func (e *Error) Is(target error) bool    { return target == ErrInvalid }
func (l ErrorList) Is(target error) bool { return target == ErrInvalid }
