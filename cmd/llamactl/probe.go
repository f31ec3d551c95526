package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"llamactl/spec"
)

// probeBinary learns which flags a llama-server binary accepts from its
// --help, and its version from --version (printed on stderr).
func probeBinary(ctx context.Context, binary string) (*spec.Flags, error) {
	help, err := runBinary(ctx, binary, "--help")
	if err != nil {
		return nil, fmt.Errorf("run %s --help: %w", binary, err)
	}
	flags := spec.ParseHelp(string(help))
	if out, err := runBinary(ctx, binary, "--version"); err == nil {
		flags.Version = parseVersion(string(out))
	}
	return flags, nil
}

// checkBinaryPath refuses a llama_server given as a path (it holds a '/')
// that is no executable file: a typo, to be told at once rather than
// served with every instance failing. A bare name is looked up on PATH
// when an instance starts, so it may be installed later; serve warns.
func checkBinaryPath(p string) error {
	if !strings.ContainsRune(p, '/') {
		return nil
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("llama_server %s: %w (set llama_server, LLAMACTL_LLAMA_SERVER or --llama-server to the llama-server binary)", p, err)
	case fi.IsDir():
		return fmt.Errorf("llama_server %s is a directory, not the llama-server binary", p)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("llama_server %s is not executable", p)
	}
	return nil
}

// runBinary runs binary with args and returns stdout followed by stderr.
func runBinary(ctx context.Context, binary string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := append(stdout.Bytes(), stderr.Bytes()...)
	if err != nil {
		if last := strings.TrimSpace(lastLine(stderr.String())); last != "" {
			return out, fmt.Errorf("%w: %s", err, last)
		}
		return out, err
	}
	return out, nil
}

// parseVersion picks "9431 (bf87261d4)" out of "version: 9431 (bf87261d4)".
func parseVersion(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return strings.TrimSpace(lastLine(out))
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
