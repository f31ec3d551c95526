package runtime

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTailFile(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", tailChunk+10)
	tests := []struct {
		name    string
		content string
		n       int
		want    string
	}{
		{"empty", "", 3, ""},
		{"fewer lines than asked", "a\nb\n", 5, "a\nb\n"},
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"no trailing newline", "a\nb\nc", 2, "b\nc"},
		{"all", "a\nb\nc\n", 0, "a\nb\nc\n"},
		{"one", "a\nb\nc\n", 1, "c\n"},
		{"empty lines", "a\n\n\n", 2, "\n\n"},
		{"line over a chunk", "a\n" + long + "\nb\n", 2, long + "\nb\n"},
		{"newline on a chunk edge", strings.Repeat("y", tailChunk-1) + "\n" + "z\n", 1, "z\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := tailFile(p, tc.n, 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("tail(%d) = %q, want %q", tc.n, trunc(got), trunc([]byte(tc.want)))
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		got, err := tailFile(filepath.Join(t.TempDir(), "none"), 3, 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("tail of a missing file = %q, %v", got, err)
		}
	})
	t.Run("from offset", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(p, []byte("old1\nold2\nnew1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, _ := tailFile(p, 5, 10)
		if string(got) != "new1\n" {
			t.Fatalf("tail from 10 = %q", got)
		}
		got, _ = tailFile(p, 5, 1000) // truncated since: from the start
		if string(got) != "old1\nold2\nnew1\n" {
			t.Fatalf("tail from past the end = %q", got)
		}
	})
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:20]) + "..." + string(b[len(b)-20:])
	}
	return string(b)
}

func TestRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "x.log")
	f, err := openLog(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 4 {
		if _, err := f.Write(bytes.Repeat([]byte{byte('a' + i)}, 100)); err != nil {
			t.Fatal(err)
		}
		rotated, err := rotateLive(p, 50, 2)
		if err != nil || !rotated {
			t.Fatalf("rotateLive %d = %v, %v", i, rotated, err)
		}
	}
	// O_APPEND: the writer's next write lands at the start of the
	// truncated file, not at its old offset.
	if _, err := f.Write([]byte("e\n")); err != nil {
		t.Fatal(err)
	}
	check := func(name, want string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Fatalf("%s = %q, %v; want %q", name, trunc(b), err, trunc([]byte(want)))
		}
	}
	check("x.log", "e\n")
	check("x.log.1", strings.Repeat("d", 100))
	check("x.log.2", strings.Repeat("c", 100))
	if _, err := os.Stat(filepath.Join(dir, "x.log.3")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("x.log.3 exists beyond LogBackups: %v", err)
	}
	if rotated, _ := rotateLive(p, 50, 2); rotated {
		t.Fatal("rotated a small file")
	}
	if err := os.WriteFile(p, bytes.Repeat([]byte("f"), 60), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rotateIdle(p, 50, 2); err != nil {
		t.Fatal(err)
	}
	check("x.log.1", strings.Repeat("f", 60))
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("x.log after rotateIdle: %v", err)
	}
}

func TestPorts(t *testing.T) {
	t.Parallel()
	p := newPorts(40000, 40002)
	p.free = func(string, int) bool { return true }
	a, err := p.lease("a", "127.0.0.1", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.lease("b", "127.0.0.1", a, nil) // prefers a, but a is a's
	if b == a {
		t.Fatalf("port %d leased twice", a)
	}
	p.claim("c", 40002)
	if _, err := p.lease("d", "127.0.0.1", 0, nil); !errors.Is(err, errNoPort) {
		t.Fatalf("lease from a full range = %v", err)
	}
	p.release("d", a) // not d's: no effect
	if _, err := p.lease("d", "127.0.0.1", 0, nil); !errors.Is(err, errNoPort) {
		t.Fatalf("release by a non-owner freed the port: %v", err)
	}
	p.release("a", a)
	if d, err := p.lease("d", "127.0.0.1", 0, map[int]bool{}); err != nil || d != a {
		t.Fatalf("lease after release = %d, %v; want %d", d, err, a)
	}
	busy := newPorts(40000, 40001)
	busy.free = func(_ string, port int) bool { return port != 40000 }
	if got, err := busy.lease("a", "", 0, nil); err != nil || got != 40001 {
		t.Fatalf("lease skipping a busy port = %d, %v", got, err)
	}
	if got, err := busy.lease("a", "", 0, map[int]bool{40001: true}); !errors.Is(err, errNoPort) {
		t.Fatalf("lease with the only free port avoided = %d, %v", got, err)
	}
	empty := newPorts(0, 0)
	if _, err := empty.lease("a", "", 0, nil); !errors.Is(err, errNoPort) {
		t.Fatalf("lease from no range = %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, max time.Duration
		n         int
		want      time.Duration
	}{
		{time.Second, 30 * time.Second, 1, time.Second},
		{time.Second, 30 * time.Second, 2, 2 * time.Second},
		{time.Second, 30 * time.Second, 5, 16 * time.Second},
		{time.Second, 30 * time.Second, 6, 30 * time.Second},
		{time.Second, 30 * time.Second, 100, 30 * time.Second},
		{0, 30 * time.Second, 3, 0},
	}
	for _, tc := range tests {
		if got := backoffDelay(tc.base, tc.max, tc.n); got != tc.want {
			t.Errorf("backoffDelay(%s, %s, %d) = %s, want %s", tc.base, tc.max, tc.n, got, tc.want)
		}
	}
}

func TestProbeHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "10.1.2.3": "10.1.2.3"} {
		if got := probeHost(in); got != want {
			t.Errorf("probeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := record{Name: "a", PID: os.Getpid(), PGID: 1, Port: 5, Hash: "h", Cmdline: []string{"x"}}
	if err := writeRecord(dir, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readRecords(dir)
	if err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Fatalf("readRecords error = %v, want one naming broken.json", err)
	}
	if len(got) != 1 || got["a"].Port != 5 || got["a"].Hash != "h" {
		t.Fatalf("records = %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "broken.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("broken record not removed")
	}
	if got["a"].ours() {
		t.Fatal("record with a wrong cmdline and start time counts as ours")
	}
}

func TestNewManagerRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]ManagerOptions{
		"no data dir":    {PortMin: 1, PortMax: 2},
		"inverted range": {DataDir: t.TempDir(), PortMin: 10, PortMax: 5},
		"range too high": {DataDir: t.TempDir(), PortMin: 10, PortMax: 70000},
	} {
		if _, err := NewManager(o); err == nil {
			t.Errorf("%s: NewManager succeeded", name)
		}
	}
}

func TestNewManagerDropsBrokenRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "bad.json"), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(ManagerOptions{DataDir: dir})
	if err != nil {
		t.Fatalf("NewManager with a broken record: %v", err)
	}
	if got := m.StaleRecords(); len(got) != 0 {
		t.Fatalf("StaleRecords = %v", got)
	}
	if err := m.Shutdown(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestBindProblem(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := bindProblem("127.0.0.1", port); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("bound port: %v", err)
	}
	// 192.0.2.1 (TEST-NET-1) is no address of this host.
	err = bindProblem("192.0.2.1", port)
	if err == nil || strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "cannot bind port") {
		t.Errorf("foreign address: %v", err)
	}
}

func TestExitStatusString(t *testing.T) {
	for st, want := range map[exitStatus]string{
		{Code: -1, Signal: syscall.SIGKILL}:    "killed by SIGKILL",
		{Code: -1, Signal: syscall.SIGSEGV}:    "killed by SIGSEGV",
		{Code: -1, Signal: syscall.Signal(40)}: "killed by signal 40 (signal 40)",
		{Code: 1}:                              "exit code 1",
		{Code: -1}:                             "exited",
	} {
		if got := st.String(); got != want {
			t.Errorf("%+v: %q, want %q", st, got, want)
		}
	}
}
