package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"llamactl/internal/syncbuf"
	"llamactl/spec"
)

// syncBuffer is a bytes.Buffer safe for the daemon's log writes.
type syncBuffer = syncbuf.Buffer

// testDaemon is serve running inside the test.
type testDaemon struct {
	logs   syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startServe runs serve with the test settings (loopback :0, a short
// debounce and drain) overridden by settings. The daemon is stopped when
// the test ends, and an error it returns fails the test.
func startServe(t *testing.T, settings map[string]any) *testDaemon {
	t.Helper()
	keys := map[string]any{"listen": "127.0.0.1:0", "reconcile.debounce": "20ms", "shutdown.drain_timeout": "1s"}
	maps.Copy(keys, settings)
	cfg, err := loadConfig("", nil, keys)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &testDaemon{cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- serve(ctx, cfg, zerolog.New(&d.logs), &d.logs) }()
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("serve: %v\n%s", err, d.logs.String())
		}
	})
	return d
}

// stop ends serve as a signal would and returns what serve returned.
func (d *testDaemon) stop() error {
	d.once.Do(func() {
		d.cancel()
		d.err = <-d.done
	})
	return d.err
}

// waitReady waits for the daemon's ready line.
func (d *testDaemon) waitReady(t *testing.T) {
	t.Helper()
	waitUntil(t, "the daemon to be ready", func() bool { return strings.Contains(d.logs.String(), "llamactl ready") })
}

// startTime is field 22 of /proc/<pid>/stat.
func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return f[0] != "Z" && f[0] != "X"
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A daemon that starts while its specs dir is missing (a git-sync not
// done yet) must not reap the children a previous run recorded: any of
// them may belong to an instance still desired. Once the dir can be read,
// a child nobody claims is reaped.
func TestServeKeepsRecordedChildrenUntilSpecsAreRead(t *testing.T) {
	root := t.TempDir()
	specs, data := filepath.Join(root, "specs"), filepath.Join(root, "data")
	pid := recordedSleep(t, data, "old")

	d := startServe(t, map[string]any{
		"specs_dir": specs, "data_dir": data, "llama_server": filepath.Join(root, "no-llama-server"),
	})
	d.waitReady(t)
	if !alive(pid) {
		t.Fatalf("recorded child reaped while the specs dir is missing\n%s", d.logs.String())
	}

	if err := os.MkdirAll(specs, 0o755); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the unclaimed child and its record to be reaped", func() bool {
		_, err := os.Stat(filepath.Join(data, "run", "old.json"))
		return !alive(pid) && os.IsNotExist(err)
	})
}

// recordedSleep runs a sleep in its own process group (ignoring SIGTERM
// when deaf) and records it in data as the child of instance name left by
// a previous run, with config hash "h".
func recordedSleep(t *testing.T, data, name string) int {
	t.Helper()
	return recordedChild(t, data, name, "h", false)
}

func recordedChild(t *testing.T, data, name, hash string, deaf bool) int {
	t.Helper()
	child := exec.Command("sleep", "60")
	if deaf {
		child = exec.Command("sh", "-c", `trap "" TERM; exec sleep 60`)
	}
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pid := child.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_, _ = child.Process.Wait()
	})
	rec, err := json.Marshal(map[string]any{
		"name": name, "pid": pid, "pgid": pid, "host": "127.0.0.1", "port": 1, "leased": false,
		"start_time": startTime(t, pid), "cmdline": []string{"sleep", "60"}, "binary": "sleep", "hash": hash,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(data, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "run", name+".json"), rec, 0o644); err != nil {
		t.Fatal(err)
	}
	return pid
}

// After a daemon restart, an instance whose file is broken keeps the
// child the previous run left (the last good spec keeps running); when
// the file is deleted, the child goes.
func TestServeKeepsChildOfBrokenSpec(t *testing.T) {
	root := t.TempDir()
	specs, data := filepath.Join(root, "specs"), filepath.Join(root, "data")
	if err := os.MkdirAll(specs, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(specs, "old.yaml")
	if err := os.WriteFile(file, []byte("model: /m.gguf\nctx_size: [1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Another instance stays, so deleting old.yaml is a delete and not an
	// emptied directory (which never prunes).
	if err := os.WriteFile(filepath.Join(specs, "other.yaml"), []byte("model: /m.gguf\nstate: stopped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := recordedSleep(t, data, "old")
	d := startServe(t, map[string]any{
		"specs_dir": specs, "data_dir": data, "llama_server": filepath.Join(root, "no-llama-server"),
	})
	d.waitReady(t)
	if !alive(pid) {
		t.Fatalf("child of an instance with a broken file reaped at start\n%s", d.logs.String())
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted instance's child and record to go", func() bool {
		_, err := os.Stat(filepath.Join(data, "run", "old.json"))
		return !alive(pid) && os.IsNotExist(err)
	})
}

// buildFakellama builds the llama-server stand-in into a temp dir.
func buildFakellama(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fakellama")
	if out, err := exec.Command("go", "build", "-o", bin, "llamactl/cmd/fakellama").CombinedOutput(); err != nil {
		t.Fatalf("build fakellama: %v\n%s", err, out)
	}
	return bin
}

// A spec's stop_timeout longer than defaults.stop_timeout: a child that
// ignores SIGTERM still gets SIGKILL when the daemon exits, instead of
// the daemon giving up first and leaving it running.
func TestServeShutdownHonoursSpecStopTimeout(t *testing.T) {
	bin := buildFakellama(t)
	root := t.TempDir()
	specs, data := filepath.Join(root, "specs"), filepath.Join(root, "data")
	pidFile := filepath.Join(root, "slow.pid")
	if err := os.MkdirAll(specs, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := "model: /m.gguf\nstop_timeout: 6\nenv:\n  FAKELLAMA_IGNORE_SIGTERM: \"1\"\n  FAKELLAMA_PID_FILE: " + pidFile + "\n"
	if err := os.WriteFile(filepath.Join(specs, "slow.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startServe(t, map[string]any{
		"specs_dir": specs, "data_dir": data, "llama_server": bin, "defaults.stop_timeout": "100ms",
		"port_range.min": 47100, "port_range.max": 47199,
	})
	var pid int
	waitUntil(t, "the child to run", func() bool {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err == nil && strings.Contains(d.logs.String(), `"to":"running"`)
	})
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := d.stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
	if alive(pid) {
		t.Fatalf("child %d ignoring SIGTERM outlived the daemon\n%s", pid, d.logs.String())
	}
}

// SIGHUP while the daemon is still starting (here: while it probes
// llama-server) is a resync request, not the end of the process.
func TestServeSIGHUPDuringStartup(t *testing.T) {
	root := t.TempDir()
	marker := filepath.Join(root, "probed")
	bin := filepath.Join(root, "slow-llama-server")
	script := "#!/bin/sh\ntouch " + marker + "\nsleep 0.3\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := startServe(t, map[string]any{
		"specs_dir": filepath.Join(root, "specs"), "data_dir": filepath.Join(root, "data"), "llama_server": bin,
	})
	waitUntil(t, "the llama-server probe", func() bool { _, err := os.Stat(marker); return err == nil })
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the daemon to be ready and resync", func() bool {
		l := d.logs.String()
		return strings.Contains(l, "llamactl ready") && strings.Contains(l, "SIGHUP: full resync")
	})
}

// A SIGTERM while the first passes run (one waits for an adopted child
// that ignores SIGTERM to stop) ends the daemon at once with
// keep_children, instead of after the child's stop_timeout.
func TestServeSignalBeforeLoaded(t *testing.T) {
	root := t.TempDir()
	specs, data := filepath.Join(root, "specs"), filepath.Join(root, "data")
	bin := filepath.Join(root, "no-llama-server")
	if err := os.MkdirAll(specs, 0o755); err != nil {
		t.Fatal(err)
	}
	body := []byte("model: /m.gguf\nstate: stopped\nstop_timeout: 30\n")
	if err := os.WriteFile(filepath.Join(specs, "old.yaml"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Decode(body, spec.YAML, "old.yaml")
	if err != nil {
		t.Fatal(err)
	}
	recordedChild(t, data, "old", sp.Hash(bin, nil), true)
	d := startServe(t, map[string]any{
		"specs_dir": specs, "data_dir": data, "llama_server": bin, "shutdown.keep_children": true,
	})
	waitUntil(t, "the adopted child to be stopping", func() bool { return strings.Contains(d.logs.String(), `"to":"stopping"`) })
	stopped := make(chan error, 1)
	go func() { stopped <- d.stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("serve still running 10s after the signal\n%s", d.logs.String())
		<-stopped
	}
	if strings.Contains(d.logs.String(), "llamactl ready") {
		t.Errorf("daemon served after the signal\n%s", d.logs.String())
	}
}

// A second daemon on a data directory in use refuses to serve, naming the
// owner's pid, and touches nothing; once the first is gone it may serve.
func TestServeDataDirLock(t *testing.T) {
	root := t.TempDir()
	keys := map[string]any{
		"specs_dir": filepath.Join(root, "specs"), "data_dir": filepath.Join(root, "data"),
		"llama_server": filepath.Join(root, "no-llama-server"),
	}
	first := startServe(t, keys)
	waitUntil(t, "the first daemon to be ready", func() bool { return strings.Contains(first.logs.String(), "llamactl ready") })
	cfg, err := loadConfig("", nil, map[string]any{"listen": "127.0.0.1:0", "specs_dir": keys["specs_dir"],
		"data_dir": keys["data_dir"], "llama_server": keys["llama_server"]})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	err = serve(context.Background(), cfg, zerolog.New(&logs), &logs)
	want := "is in use by another llamactl (pid " + strconv.Itoa(os.Getpid()) + ")"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second daemon on the data dir: %v, want an error saying it %s", err, want)
	}
	if strings.Contains(logs.String(), "llamactl ready") {
		t.Fatalf("second daemon served:\n%s", logs.String())
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	second := startServe(t, keys)
	waitUntil(t, "a daemon after the first stopped", func() bool { return strings.Contains(second.logs.String(), "llamactl ready") })
}

func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, lockFileName)); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want this pid", b)
	}
	if _, err := lockDataDir(dir); err == nil {
		t.Fatal("locked twice")
	}
	unlock()
	unlock2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
	if _, err := lockDataDir(filepath.Join(dir, "missing", "dir")); err == nil || !strings.Contains(err.Error(), "lock data dir") {
		t.Errorf("lock in a missing dir: %v", err)
	}
}
