package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binary is the fakellama executable built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakellama-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fakellama")
	out, err := exec.Command("go", "build", "-o", binary, "llamactl/cmd/fakellama").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fakellama: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proc is a running fakellama started by startFake.
type proc struct {
	cmd     *exec.Cmd
	stderr  string // path of the stderr file
	port    int
	done    chan struct{}
	waitErr error
}

// startFake runs the binary with args (plus "--port 0" unless a port is
// given) and extra environment, and waits until it logs its port.
func startFake(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := launch(t, env, args...)
	re := regexp.MustCompile(`main: HTTP server is listening, hostname: \S+, port: (\d+)`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := re.FindStringSubmatch(p.log(t)); m != nil {
			p.port, _ = strconv.Atoi(m[1])
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("fakellama exited before listening: %v\n%s", p.waitErr, p.log(t))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fakellama did not listen in time:\n%s", p.log(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// launch starts the binary in its own process group without waiting.
func launch(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	hasPort := false
	for _, a := range args {
		hasPort = hasPort || a == "--port"
	}
	if !hasPort {
		args = append(args, "--port", "0")
	}
	dir := t.TempDir()
	errPath := filepath.Join(dir, "stderr")
	errFile, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = errFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = errFile.Close()
	p := &proc{cmd: cmd, stderr: errPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func (p *proc) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (p *proc) url(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(p.port) + path
}

// exitCode waits up to d for the process to exit and returns its code.
func (p *proc) exitCode(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("fakellama still running after %s:\n%s", d, p.log(t))
	}
	return p.cmd.ProcessState.ExitCode()
}

// newClient returns a client whose idle connections are closed at cleanup.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   string
	close  bool // the server announced "Connection: close"
}

func do(t *testing.T, c *http.Client, method, url, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return response{res.StatusCode, res.Header, string(b), res.Close}
}

// waitReady polls /health until it answers 200.
func waitReady(t *testing.T, p *proc, c *http.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r := do(t, c, "GET", p.url("/health"), ""); r.status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready in time:\n%s", p.log(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInfoFlags(t *testing.T) {
	tests := []struct {
		name, flag, stdout, stderr string
	}{
		{"version on stderr", "--version", "", versionText},
		{"help on stdout", "--help", helpText, ""},
		{"short help", "-h", helpText, ""},
		{"list devices", "--list-devices", listDevicesText, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := exec.Command(binary, tt.flag)
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("run %s: %v", tt.flag, err)
			}
			if out.String() != tt.stdout || errb.String() != tt.stderr {
				t.Errorf("stdout %q... stderr %q..., want %q... and %q...", trunc(out.String()), trunc(errb.String()), trunc(tt.stdout), trunc(tt.stderr))
			}
		})
	}
}

func trunc(s string) string { return s[:min(len(s), 40)] }

func TestBadCommandLine(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-m", "x.gguf", "--bogus"}, "error: invalid argument: --bogus\n"},
		{"positional", []string{"x.gguf"}, "error: invalid argument: x.gguf\n"},
		{"missing value", []string{"--port"}, "error while handling argument \"--port\": expected value for argument\n"},
		{"bad port", []string{"--port", "http"}, "error while handling argument \"--port\""},
		{"value syntax not accepted", []string{"--port=8080"}, "error: invalid argument: --port=8080\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := exec.Command(binary, tt.args...)
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("exit code %d (%v), want 1; stderr %q", code, err, errb.String())
			}
			if !strings.HasPrefix(errb.String(), tt.want) || out.Len() != 0 {
				t.Errorf("stderr %q stdout %q, want stderr starting %q", errb.String(), out.String(), tt.want)
			}
		})
	}
}

func TestAcceptsRecordedFlags(t *testing.T) {
	p := startFake(t, nil, "-m", "/models/tiny.gguf", "--flash-attn", "on", "-ngl", "99", "--jinja",
		"--control-vector-layer-range", "1", "2", "-ot", "exps=CPU", "--no-mmap", "--cache_type_k", "q8_0",
		"--seed", "-1", "-c", "512", "--host", "127.0.0.1")
	c := newClient(t)
	waitReady(t, p, c)
	if r := do(t, c, "GET", p.url("/v1/models"), ""); !strings.Contains(r.body, `"id":"tiny.gguf"`) || !strings.Contains(r.body, `"n_ctx":512`) {
		t.Errorf("models body %s, want id tiny.gguf and n_ctx 512", r.body)
	}
}

func TestHealthWhileLoading(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_LOAD_DELAY=300ms"}, "-m", "tiny.gguf")
	c := newClient(t)
	for _, path := range []string{"/health", "/v1/health", "/v1/models"} {
		r := do(t, c, "GET", p.url(path), "")
		if r.status != 503 || r.body != bodyLoading {
			t.Errorf("GET %s while loading = %d %s, want 503 %s", path, r.status, r.body, bodyLoading)
		}
	}
	waitReady(t, p, c)
	r := do(t, c, "GET", p.url("/v1/health"), "")
	if r.status != 200 || r.body != `{"status":"ok"}` || r.header.Get("Server") != "llama.cpp" {
		t.Errorf("ready health = %d %s %v", r.status, r.body, r.header)
	}
	if !strings.Contains(p.log(t), "main: server is listening on http://127.0.0.1:"+strconv.Itoa(p.port)+" - starting the main loop") {
		t.Errorf("missing main loop line in:\n%s", p.log(t))
	}
}

func TestPortInUse(t *testing.T) {
	p := startFake(t, nil, "-m", "a.gguf")
	start := time.Now()
	q := launch(t, nil, "-m", "b.gguf", "--port", strconv.Itoa(p.port))
	if code := q.exitCode(t, 5*time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s to fail", d)
	}
	if !strings.Contains(q.log(t), "couldn't bind HTTP server socket") {
		t.Errorf("stderr:\n%s", q.log(t))
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	p := startFake(t, nil, "-m", "a.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t, 3*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown took %s", d)
	}
}

func TestIgnoreSIGTERM(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_IGNORE_SIGTERM=1"}, "-m", "a.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		t.Fatal("exited on SIGTERM")
	case <-time.After(200 * time.Millisecond):
	}
	if r := do(t, c, "GET", p.url("/health"), ""); r.status != 200 {
		t.Errorf("health after SIGTERM = %d", r.status)
	}
	_ = p.cmd.Process.Kill()
	if code := p.exitCode(t, 3*time.Second); code != -1 {
		t.Errorf("exit code %d, want -1 (killed)", code)
	}
}

func TestExitAtStart(t *testing.T) {
	start := time.Now()
	p := launch(t, []string{"FAKELLAMA_EXIT_AT_START=3"}, "-m", "/nope/missing.gguf")
	if code := p.exitCode(t, 3*time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
	if !strings.Contains(p.log(t), "failed to load model '/nope/missing.gguf'") {
		t.Errorf("stderr:\n%s", p.log(t))
	}
}

func TestCheckModel(t *testing.T) {
	p := launch(t, []string{"FAKELLAMA_CHECK_MODEL=1"}, "-m", filepath.Join(t.TempDir(), "missing.gguf"))
	if code := p.exitCode(t, 3*time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}

func TestCrashAfterRequests(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_CRASH_AFTER_REQUESTS=2", "FAKELLAMA_EXIT_CODE=7"}, "-m", "a.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	for i := range 2 {
		if r := do(t, c, "POST", p.url("/v1/chat/completions"), `{"max_tokens":2}`); r.status != 200 {
			t.Fatalf("request %d = %d", i, r.status)
		}
	}
	if code := p.exitCode(t, 3*time.Second); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
}

func TestCrashAfterDuration(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_CRASH_AFTER=100ms", "FAKELLAMA_EXIT_CODE=5"}, "-m", "a.gguf")
	if code := p.exitCode(t, 3*time.Second); code != 5 {
		t.Fatalf("exit code %d, want 5", code)
	}
}

func TestArgvAndPidFiles(t *testing.T) {
	dir := t.TempDir()
	argv, pidf := filepath.Join(dir, "argv.json"), filepath.Join(dir, "pid")
	p := startFake(t, []string{"FAKELLAMA_ARGV_FILE=" + argv, "FAKELLAMA_PID_FILE=" + pidf}, "-m", "a b.gguf", "--jinja")
	b, err := os.ReadFile(argv)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["-m","a b.gguf","--jinja","--port","0"]`; string(b) != want {
		t.Errorf("argv file %s, want %s", b, want)
	}
	b, err = os.ReadFile(pidf)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(p.cmd.Process.Pid) + "\n"; string(b) != want {
		t.Errorf("pid file %q, want %q", b, want)
	}
}

func TestGrandchild(t *testing.T) {
	pidf := filepath.Join(t.TempDir(), "gc.pid")
	p := startFake(t, []string{"FAKELLAMA_GRANDCHILD=1", "FAKELLAMA_GRANDCHILD_PIDFILE=" + pidf}, "-m", "a.gguf")
	waitReady(t, p, newClient(t)) // the pid file is written before the model "loads"
	b, err := os.ReadFile(pidf)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	pgid, err := syscall.Getpgid(gc)
	if err != nil {
		t.Fatalf("grandchild %d not running: %v", gc, err)
	}
	if pgid != p.cmd.Process.Pid {
		t.Errorf("grandchild pgid %d, want %d", pgid, p.cmd.Process.Pid)
	}
	// Killing only the child leaves the grandchild running.
	_ = p.cmd.Process.Kill()
	p.exitCode(t, 3*time.Second)
	if err := syscall.Kill(gc, 0); err != nil {
		t.Errorf("grandchild died with its parent: %v", err)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(3 * time.Second)
	for syscall.Kill(gc, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("grandchild survived SIGKILL of its group")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLongLine(t *testing.T) {
	const n = 1 << 20
	p := startFake(t, []string{"FAKELLAMA_LONG_LINE=" + strconv.Itoa(n), "FAKELLAMA_LONG_LINE_EACH=1"}, "-m", "a.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	count := 0
	for line := range strings.SplitSeq(p.log(t), "\n") {
		if len(line) == n-1 {
			count++
		}
	}
	if count < 2 { // startup plus at least one /health
		t.Errorf("found %d lines of %d bytes, want >= 2", count, n)
	}
}

func TestSIGTERMDuringStream(t *testing.T) {
	p := startFake(t, []string{"FAKELLAMA_TOKEN_DELAY=1s", "FAKELLAMA_TOKENS=30"}, "-m", "a.gguf")
	c := newClient(t)
	waitReady(t, p, c)
	res, err := c.Post(p.url("/v1/chat/completions"), "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t, 3*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown with an open stream took %s", d)
	}
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Error("stream ended cleanly although the server stopped mid-stream")
	}
}
