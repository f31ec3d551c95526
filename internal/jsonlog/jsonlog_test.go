package jsonlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// zerologString is how zerolog writes s as a field value.
func zerologString(s string) []byte {
	var buf bytes.Buffer
	l := zerolog.New(&buf)
	l.Log().Str("v", s).Send()
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return bytes.TrimSuffix(bytes.TrimPrefix(line, []byte(`{"v":`)), []byte("}"))
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "plain /v1/chat/completions", `quote " and \ backslash`, "tab\tnew\nline\rcr",
		"\x00\x01\x1f\x7f", "héllo wörld ✓ 😀", "bad \xff utf-8 \xc3", "\u2028\u2029",
	} {
		got := AppendString([]byte("x"), s)
		if want := append([]byte("x"), zerologString(s)...); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, zerolog writes %s", s, got, want)
		}
		if got2 := AppendString([]byte("x"), []byte(s)); !bytes.Equal(got, got2) {
			t.Errorf("%q: []byte gives %s, string %s", s, got2, got)
		}
	}
}

// FuzzAppendString checks that every string comes out as the JSON string
// zerolog would write, which decodes to the input with invalid UTF-8
// replaced.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00\n", "é", "\xff", "😀\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: not JSON: %v", s, got, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back != want && back != validPerByte(s) {
			t.Fatalf("%q -> %s decodes to %q", s, got, back)
		}
		if want := zerologString(s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, zerolog writes %s", s, got, want)
		}
	})
}

// validPerByte replaces each invalid byte of s by U+FFFD.
func validPerByte(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

func TestTimestamp(t *testing.T) {
	now := time.Date(2026, 11, 26, 11, 48, 20, 500, time.UTC)
	if got, want := Timestamp(now), now.Format(zerolog.TimeFieldFormat); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The same second is served from the cache, the next one anew.
	if got := Timestamp(now.Add(400 * time.Millisecond)); got != "2026-11-26T11:48:20Z" {
		t.Fatalf("same second: %q", got)
	}
	if got := Timestamp(now.Add(time.Second)); got != "2026-11-26T11:48:21Z" {
		t.Fatalf("next second: %q", got)
	}
}
