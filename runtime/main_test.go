package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fakellama is the path of the stand-in llama-server built by TestMain.
var fakellama string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakellama = filepath.Join(dir, "fakellama")
	out, err := exec.Command("go", "build", "-o", fakellama, "llamactl/cmd/fakellama").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fakellama: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { _ = os.RemoveAll(dir) }))
}

// portBlock hands each test manager its own block of ports, so parallel
// tests rarely race for one (the supervisor copes when they do).
// Blocks start at a random offset so that concurrent test processes
// (other packages) rarely pick the same ports.
var portBlock atomic.Int32

func init() { portBlock.Store(rand.Int32N(portBlocks)) }

// portBlocks 40-port blocks fit in [20000, 32000), below the kernel's
// ephemeral range (32768-60999 by default), so a test's own outgoing
// connections never hold a port a test expects free.
const portBlocks = 300

// nextPortBlock returns the first port of a fresh 40-port block in
// [20000, 32000).
func nextPortBlock() int { return 20000 + int(portBlock.Add(1))%portBlocks*40 }

func newManager(t testing.TB, tweak func(*ManagerOptions)) *Manager {
	t.Helper()
	base := nextPortBlock()
	opts := ManagerOptions{
		DataDir:          t.TempDir(),
		PortMin:          base,
		PortMax:          base + 39,
		MaxRestartDelay:  200 * time.Millisecond,
		LogCheckInterval: 50 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&opts)
	}
	m, err := NewManager(opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

// testConfig runs fakellama with env (KEY=VALUE pairs) added.
func testConfig(name string, env ...string) Config {
	cfg := Config{
		Name:           name,
		Binary:         fakellama,
		Args:           []string{"-m", "tiny.gguf"},
		Env:            map[string]string{},
		Host:           "127.0.0.1",
		Hash:           "h1",
		StopTimeout:    2 * time.Second,
		StartupTimeout: 5 * time.Second,
		AutoRestart:    true,
		MaxRestarts:    3,
		RestartDelay:   10 * time.Millisecond,
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		cfg.Env[k] = v
	}
	return cfg
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond every 5 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitPhase(t testing.TB, s *Supervisor, want Phase, d time.Duration) Status {
	t.Helper()
	var st Status
	waitFor(t, d, "phase "+string(want), func() bool {
		st = s.Snapshot()
		return st.Phase == want
	})
	return st
}

// startRunning supervises cfg, starts it and waits until it is running.
func startRunning(t testing.TB, m *Manager, cfg Config) (*Supervisor, Status) {
	t.Helper()
	s := m.Supervise(cfg)
	if err := s.Start(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := waitPhase(t, s, PhaseRunning, 5*time.Second)
	return s, st
}

// httpGet does one request on a fresh connection.
func httpDo(method, addr, path, body string) (int, string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func chat(addr string) (int, error) {
	code, _, err := httpDo("POST", addr, "/v1/chat/completions", `{"model":"x","messages":[{"role":"user","content":"hi"}]}`)
	return code, err
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool { return pidAlive(pid) }

func readPidFile(t testing.TB, path string) int {
	t.Helper()
	var pid int
	waitFor(t, 5*time.Second, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

func portIsFree(port int) bool { return portFree("127.0.0.1", port) }

func readArgv(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read argv: %v", err)
	}
	var argv []string
	if err := json.Unmarshal(b, &argv); err != nil {
		t.Fatalf("decode argv: %v", err)
	}
	return argv
}

// listen takes a port on 127.0.0.1 in [min, max] and keeps it.
func listen(t testing.TB, port int) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

var _ = errors.Is

func (st Status) addr() string { return "127.0.0.1:" + strconv.Itoa(st.Port) }

var errDeadline = context.DeadlineExceeded

func killPID(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
