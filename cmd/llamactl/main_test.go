package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommands(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // substring of stdout+stderr
	}{
		{"no args", nil, 2, "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"version", []string{"version"}, 0, "llamactl "},
		{"version stray arg", []string{"version", "--x"}, 2, "takes no arguments"},
		{"help", []string{"--help"}, 0, "llamactl validate"},
		{"serve help", []string{"serve", "--help"}, 0, "-specs"},
		{"validate help", []string{"validate", "--help"}, 0, "file:line:col"},
		{"serve bad flag", []string{"serve", "--nope"}, 2, "flag provided but not defined"},
		{"serve stray arg", []string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{"serve bad listen", []string{"serve", "--listen", "nowhere"}, 2, "want HOST:PORT"},
		{"serve missing binary", []string{"serve", "--listen", "127.0.0.1:0", "--llama-server", "/nonexistent/llama-server"}, 2, "llama_server /nonexistent/llama-server: stat"},
		{"serve binary is a dir", []string{"serve", "--listen", "127.0.0.1:0", "--llama-server", "/"}, 2, "is a directory"},
		{"serve missing config", []string{"serve", "--config", "/nonexistent/llamactl.yaml"}, 2, "config file"},
		{"validate no path", []string{"validate"}, 2, "no PATH given"},
		{"validate missing binary", []string{"validate", "--llama-server", "/nonexistent/llama-server", "."}, 2, "no such file or directory\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCmd(c.args...)
			if code != c.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, c.wantCode, errOut)
			}
			if !strings.Contains(out+errOut, c.wantOut) {
				t.Errorf("output %q does not contain %q", out+errOut, c.wantOut)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	got := parseVersion("version: 9431 (bf87261d4)\nbuilt with GNU 12.2.0 for Linux x86_64\n")
	if got != "9431 (bf87261d4)" {
		t.Fatalf("parseVersion = %q", got)
	}
}

func TestCheckBinaryPath(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "llama-server"), filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, ok := range map[string]bool{
		"llama-server":                true, // a name on PATH, maybe installed later
		exe:                           true,
		plain:                         false,
		dir:                           false,
		filepath.Join(dir, "missing"): false,
	} {
		if err := checkBinaryPath(p); (err == nil) != ok {
			t.Errorf("%s: %v", p, err)
		}
	}
}
