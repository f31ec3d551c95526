package main

import (
	"bytes"
	"context"
	"fmt"
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
