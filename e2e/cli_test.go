package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runCLI runs llamactl with args and env (added to a clean environment)
// and returns its exit code, stdout and stderr. It must finish in 20s.
func runCLI(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, llamactlBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LLAMACTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 2 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("llamactl %q did not finish in time; stderr:\n%s", args, errb.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run llamactl %q: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestCLI (10): validate reports file:line:col problems with exit 1 and
// passes good files with exit 0; a bad configuration is exit 2.
func TestCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodYAML := write("good/chat.yaml", "model: /models/a.gguf\nctx_size: 2048\nalias: chat\nenv:\n  A: \"1\"\nstate: stopped\n")
	goodTOML := write("good/llama.toml", "model = \"/models/b.gguf\"\nctx_size = 4096\non_demand_start = true\nidle_timeout = 60\n")
	goodJSON := write("good/embed.json", "{\n  \"model\": \"/models/c.gguf\",\n  \"embedding\": true\n}\n")
	badKey := write("bad/key.yaml", "model: /models/a.gguf\nctx_sise: 2048\n")
	badSyntax := write("bad/syntax.yaml", "model: /models/a.gguf\nctx_size: [oops\n")
	badTOML := write("bad/type.toml", "model = \"/models/b.gguf\"\n\nctx_size = \"big\"\n")
	badJSON := write("bad/state.json", "{\n  \"model\": \"/models/c.gguf\",\n  \"state\": \"paused\"\n}\n")
	noModel := write("bad/nomodel.yaml", "ctx_size: 2048\n")

	t.Run("ValidateGood", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{goodYAML, goodTOML, goodJSON}, {filepath.Join(dir, "good")}} {
			code, stdout, stderr := runCLI(t, nil, append([]string{"validate"}, args...)...)
			if code != 0 || stdout != "" {
				t.Errorf("validate %v: exit %d, stdout %q, stderr %q; want exit 0 and no problems", args, code, stdout, stderr)
			}
		}
	})

	t.Run("ValidateBad", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			file string
			line string // expected line number; "" = any
			want string // substring of the message
		}{
			{badKey, "2", "ctx_sise"},
			{badSyntax, "", ""},
			{badTOML, "3", ""},
			{badJSON, "3", ""},
			{noModel, "", ""},
		}
		for _, c := range cases {
			code, stdout, stderr := runCLI(t, nil, "validate", goodYAML, c.file)
			if code != 1 {
				t.Errorf("validate %s: exit %d, want 1 (stdout %q, stderr %q)", c.file, code, stdout, stderr)
			}
			line := `\d+`
			if c.line != "" {
				line = c.line
			}
			re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c.file) + `:` + line + `:\d+: .*` + regexp.QuoteMeta(c.want))
			if c.file == noModel {
				// A missing key has no position of its own; the file name
				// must still lead the line.
				re = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c.file) + `:(\d+:\d+:)? .+`)
			}
			if !re.MatchString(stdout) {
				t.Errorf("validate %s: stdout %q does not match %s", c.file, stdout, re)
			}
			if strings.Contains(stdout, goodYAML) {
				t.Errorf("validate reported the good file too: %q", stdout)
			}
		}
		code, stdout, _ := runCLI(t, nil, "validate", filepath.Join(dir, "bad"))
		if n := strings.Count(strings.TrimSpace(stdout), "\n") + 1; code != 1 || n < 5 {
			t.Errorf("validate bad dir: exit %d, %d problem lines, want exit 1 and at least 5:\n%s", code, n, stdout)
		}
	})

	cfg := write("cfg/bad.yaml", "specs_dir: "+dir+"\nlisten: 127.0.0.1:0\nlisen: oops\n")
	tomlCfg := write("cfg/bad.toml", "listen = \"127.0.0.1:0\"\n[port_range]\nmin = 9\nmax = 1\n")

	t.Run("BadConfigExits2", func(t *testing.T) {
		t.Parallel()
		base := []string{"serve", "--specs", filepath.Join(dir, "good"), "--data-dir", filepath.Join(dir, "data"),
			"--llama-server", fakellamaBin}
		cases := []struct {
			name string
			env  []string
			args []string
		}{
			{"unknown config key", nil, append(base, "--config", cfg, "--listen", "127.0.0.1:0")},
			{"impossible port range in TOML", nil, append(base, "--config", tomlCfg)},
			{"bad env duration", []string{"LLAMACTL_RECONCILE_DEBOUNCE=soon"}, append(base, "--listen", "127.0.0.1:0")},
			{"bad port range env", []string{"LLAMACTL_PORT_RANGE_MIN=9", "LLAMACTL_PORT_RANGE_MAX=1"}, append(base, "--listen", "127.0.0.1:0")},
			{"bad listen flag", nil, append(base, "--listen", "nonsense")},
			{"missing config file", nil, append(base, "--config", filepath.Join(dir, "cfg", "absent.yaml"), "--listen", "127.0.0.1:0")},
			{"unknown flag", nil, append(base, "--bogus")},
		}
		for _, c := range cases {
			code, _, stderr := runCLI(t, c.env, c.args...)
			if code != 2 || strings.TrimSpace(stderr) == "" {
				t.Errorf("%s: exit %d, stderr %q; want exit 2 with a message", c.name, code, stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Errorf("a refused configuration still created the data dir")
		}
	})

	t.Run("Version", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runCLI(t, nil, "version")
		if code != 0 || !strings.HasPrefix(stdout, "llamactl ") {
			t.Errorf("version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if code, _, _ := runCLI(t, nil, "frobnicate"); code != 2 {
			t.Errorf("unknown command: exit %d, want 2", code)
		}
	})
}
