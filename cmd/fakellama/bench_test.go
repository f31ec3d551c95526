package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkChatCompletionJSON measures the in-process cost of one
// non-streamed chat completion (handler only, no network).
func BenchmarkChatCompletionJSON(b *testing.B) {
	opts, err := parseArgs([]string{"-m", "/m/tiny.gguf"})
	if err != nil {
		b.Fatal(err)
	}
	f, err := readFaults(func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	s := newServer(opts, f, &logger{w: io.Discard})
	s.ready.Store(true)
	const body = `{"model":"tiny","messages":[{"role":"user","content":"hello"}],"max_tokens":16}`
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
