package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemon is one running "llamactl serve" as seen from one test: its
// helpers report failures to t. Use on to get a view for a subtest.
type daemon struct {
	t   testing.TB
	fd  *fleetDir
	URL string // http://127.0.0.1:PORT, from the ready log line
	*proc
}

// proc is the daemon process, shared by every view of it.
type proc struct {
	owner testing.TB // the test that started it; its cleanup ends it
	fd    *fleetDir
	cmd   *exec.Cmd
	log   *logBuffer

	done     chan struct{} // closed when the process has been waited for
	waitErr  error         // written by the waiter before done is closed
	readDone chan struct{} // closed when the log reader has finished
	readPipe *os.File
}

// on returns a view of d whose helpers report to t (a subtest).
func (d *daemon) on(t *testing.T) *daemon {
	c := *d
	c.t = t
	return &c
}

// daemonOpts tune startDaemon.
type daemonOpts struct {
	Env  map[string]string // extra environment, LLAMACTL_* overrides
	Args []string          // extra serve flags
	// SpecsDir replaces the fleet's specs dir (e.g. a git-sync link).
	SpecsDir string
	// DiscardLog drains the daemon's output after its ready line without
	// keeping it. Benchmarks set it: keeping an access line per request
	// would cost the process that generates the load CPU during the
	// proxy's rounds only, and so bias the comparison against it.
	DiscardLog bool
}

// startDaemon runs "llamactl serve" on fd and waits for its ready line.
// A cleanup kills the daemon (if still running) and every child of fd.
func startDaemon(t testing.TB, fd *fleetDir, opts daemonOpts) *daemon {
	t.Helper()
	specs := fd.SpecsDir
	if opts.SpecsDir != "" {
		specs = opts.SpecsDir
	}
	args := []string{"serve",
		"--specs", specs,
		"--listen", "127.0.0.1:0",
		"--data-dir", fd.DataDir,
		"--llama-server", fakellamaBin,
	}
	args = append(args, opts.Args...)
	cmd := exec.Command(llamactlBin, args...)
	cmd.Env = fd.baseEnv(opts.Env)
	cmd.Dir = fd.Root
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("create pipe: %v", err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("start llamactl: %v", err)
	}
	w.Close()
	p := &proc{
		owner: t, fd: fd, cmd: cmd,
		log:      &logBuffer{ready: make(chan string, 1), discard: opts.DiscardLog},
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
		readPipe: r,
	}
	go func() {
		defer close(p.readDone)
		p.log.consume(r)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.cleanup)
	d := &daemon{t: t, fd: fd, proc: p}

	select {
	case addr := <-d.log.ready:
		d.URL = "http://" + addr
	case <-d.done:
		select { // let the reader drain what the process wrote last
		case <-d.readDone:
		case <-time.After(2 * time.Second):
		}
		t.Fatalf("llamactl exited before it was ready (%v); output:\n%s", d.waitErr, d.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("llamactl not ready after 60s; output:\n%s", d.log.String())
	}
	return d
}

// cleanup kills the daemon and every child, then waits for the log
// reader. When the test failed it logs the tail of the daemon's output.
func (p *proc) cleanup() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.owner.Errorf("llamactl pid %d did not exit after SIGKILL", p.cmd.Process.Pid)
	}
	p.fd.killChildren(p.owner)
	select {
	case <-p.readDone:
	case <-time.After(5 * time.Second):
		// A leftover process still holds the pipe; stop reading.
		p.readPipe.Close()
		<-p.readDone
	}
	p.readPipe.Close()
	out := p.log.String()
	if p.owner.Failed() {
		p.owner.Logf("llamactl output (pid %d):\n%s", p.cmd.Process.Pid, tail(out, 300))
	}
	if strings.Contains(out, "WARNING: DATA RACE") {
		p.owner.Errorf("llamactl reported a data race:\n%s", out)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[%d earlier lines left out]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("signal llamactl: %v", err)
	}
}

// wait waits for the daemon to exit and returns its exit code (-1 when
// killed by a signal).
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.t.Fatalf("llamactl did not exit within %s; output:\n%s", timeout, d.log.String())
	}
	if d.waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(d.waitErr, &ee) {
		return ee.ExitCode()
	}
	d.t.Fatalf("wait for llamactl: %v", d.waitErr)
	return -1
}

// logBuffer collects the daemon's output and announces the listen
// address of the first "llamactl ready" line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	ready   chan string
	seen    bool
	discard bool // drop everything after the ready line
}

func (l *logBuffer) consume(r *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		l.mu.Lock()
		l.buf.Write(line)
		l.buf.WriteByte('\n')
		l.mu.Unlock()
		var rec struct {
			Message string `json:"message"`
			Listen  string `json:"listen"`
		}
		if !l.seen && json.Unmarshal(line, &rec) == nil && rec.Message == "llamactl ready" && rec.Listen != "" {
			l.seen = true
			l.ready <- rec.Listen
			if l.discard {
				l.mu.Lock()
				l.buf.WriteString("(output after the ready line discarded)\n")
				l.mu.Unlock()
				_, _ = io.Copy(io.Discard, r)
				return
			}
		}
	}
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// records returns the JSON log records whose message contains substr.
func (l *logBuffer) records(substr string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if m, _ := rec["message"].(string); strings.Contains(m, substr) {
			out = append(out, rec)
		}
	}
	return out
}
