package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fleetDir is the on-disk state one or more daemons share: the specs
// directory, the data directory, and where fakellama children write their
// pid and argv files. Root also marks every child (its environment holds
// the path), so children can be found in /proc and cleaned up.
type fleetDir struct {
	Root     string
	SpecsDir string
	DataDir  string
	PidDir   string
	// PortMin and PortMax are the daemons' port range for instances.
	PortMin, PortMax int
}

// newFleetDir creates the directories under a fresh t.TempDir. It
// registers a cleanup that kills every fakellama child marked with the
// root, so nothing outlives the test even when it fails.
func newFleetDir(t testing.TB) *fleetDir {
	t.Helper()
	// Resolve links in the temp path: a symlink above the specs dir would
	// make the daemon treat it as a read-only git-sync checkout.
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatalf("resolve temp dir: %v", err)
	}
	fd := &fleetDir{
		Root:     root,
		SpecsDir: filepath.Join(root, "specs"),
		DataDir:  filepath.Join(root, "data"),
		PidDir:   filepath.Join(root, "pids"),
	}
	fd.PortMin, fd.PortMax = nextPortRange()
	for _, d := range []string{fd.SpecsDir, fd.DataDir, fd.PidDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("create %s: %v", d, err)
		}
	}
	t.Cleanup(func() { fd.killChildren(t) })
	return fd
}

// baseEnv is the daemon environment: the test's own without any
// LLAMACTL_* variable, plus fast settings for tests.
func (fd *fleetDir) baseEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LLAMACTL_") && !strings.HasPrefix(kv, "FAKELLAMA_") {
			env = append(env, kv)
		}
	}
	vars := map[string]string{
		"LLAMACTL_LOG_FORMAT":                     "json",
		"LLAMACTL_RECONCILE_DEBOUNCE":             "50ms",
		"LLAMACTL_DEFAULTS_RESTART_DELAY_SECONDS": "0",
		"LLAMACTL_DEFAULTS_STOP_TIMEOUT":          "3s",
		"LLAMACTL_SHUTDOWN_DRAIN_TIMEOUT":         "2s",
		"LLAMACTL_PORT_RANGE_MIN":                 strconv.Itoa(fd.PortMin),
		"LLAMACTL_PORT_RANGE_MAX":                 strconv.Itoa(fd.PortMax),
		"E2E_FLEET_ROOT":                          fd.Root,
	}
	for k, v := range extra {
		vars[k] = v
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// pidFile is where the child of instance name writes its pid.
func (fd *fleetDir) pidFile(name string) string {
	return filepath.Join(fd.PidDir, name+".pid")
}

// argvFile is where the child of instance name writes its argv.
func (fd *fleetDir) argvFile(name string) string {
	return filepath.Join(fd.PidDir, name+".argv.json")
}

// specYAML is a minimal YAML spec for instance name whose child reports
// its pid and argv; extra lines are appended (top-level keys).
func (fd *fleetDir) specYAML(name string, env map[string]string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# instance %s\nmodel: /models/%s.gguf\nenv:\n", name, name)
	for _, kv := range fd.childEnv(name, env) {
		fmt.Fprintf(&b, "  %s: %q\n", kv[0], kv[1])
	}
	for _, l := range extra {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// childEnv is the spec env of instance name, sorted by key: the pid and
// argv files plus extra.
func (fd *fleetDir) childEnv(name string, extra map[string]string) [][2]string {
	env := map[string]string{
		"FAKELLAMA_PID_FILE":  fd.pidFile(name),
		"FAKELLAMA_ARGV_FILE": fd.argvFile(name),
	}
	for k, v := range extra {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, env[k]}
	}
	return out
}

// childEnvMap is childEnv as a map.
func (fd *fleetDir) childEnvMap(name string, extra map[string]string) map[string]string {
	m := map[string]string{}
	for _, kv := range fd.childEnv(name, extra) {
		m[kv[0]] = kv[1]
	}
	return m
}

// writeSpec writes file (relative to the specs dir) atomically: the
// content goes to a temp file outside the specs dir and is renamed in,
// so the watcher never sees a partial file.
func (fd *fleetDir) writeSpec(t testing.TB, file, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(fd.Root, "spec-*.tmp")
	if err != nil {
		t.Fatalf("create temp spec: %v", err)
	}
	_, werr := tmp.WriteString(content)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		t.Fatalf("write temp spec: %v", errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), filepath.Join(fd.SpecsDir, file)); err != nil {
		t.Fatalf("rename spec into place: %v", err)
	}
}

// readSpec returns the content of file in the specs dir.
func (fd *fleetDir) readSpec(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fd.SpecsDir, file))
	if err != nil {
		t.Fatalf("read spec: %v", err)
	}
	return b
}
