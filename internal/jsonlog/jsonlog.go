// Package jsonlog holds what the daemon's hand-written JSON log lines
// share with its zerolog lines: the time field, formatted once per second
// as zerolog.TimeFieldFormat, and JSON string escaping as zerolog does it
// (control characters escaped, invalid UTF-8 replaced by U+FFFD).
package jsonlog

import (
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

type formattedSecond struct {
	unix int64
	text string
}

var lastSecond atomic.Pointer[formattedSecond]

// Timestamp returns t in zerolog.TimeFieldFormat, which has whole seconds
// (RFC 3339 by default). The text of the latest second is kept, so a busy
// logger formats a time once per second rather than once per line.
func Timestamp(t time.Time) string {
	sec := t.Unix()
	if f := lastSecond.Load(); f != nil && f.unix == sec {
		return f.text
	}
	f := &formattedSecond{unix: sec, text: t.Format(zerolog.TimeFieldFormat)}
	lastSecond.Store(f)
	return f.text
}

const hex = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: printable ASCII
// but the quote and the backslash (zerolog escapes DEL as well).
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s to dst as a JSON string.
func AppendString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			return appendEscaped(append(dst, s[:i]...), string(s[i:]))
		}
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendEscaped appends the rest of a string from its first byte that
// needs more than copying, and the closing quote.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
