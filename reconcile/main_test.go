package reconcile

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"llamactl/runtime"
)

// fakellamaBin is cmd/fakellama, built once by TestMain.
var fakellamaBin string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "reconcile-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create temp dir:", err)
		os.Exit(1)
	}
	fakellamaBin = filepath.Join(tmp, "fakellama")
	out, err := exec.Command("go", "build", "-o", fakellamaBin, "llamactl/cmd/fakellama").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fakellama: %v\n%s", err, out)
		_ = os.RemoveAll(tmp)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(tmp)
		os.Exit(code)
	}))
}

// fakeSup is a supervisor that only records what it was asked.
type fakeSup struct {
	mu       sync.Mutex
	cfg      runtime.Config
	phase    runtime.Phase
	starts   int
	stops    int
	updates  int // Update calls
	restarts int // Update calls that changed the hash of a running process, plus Restart calls
	startErr error
	onUpdate func(runtime.Config) // called outside the lock, if set
	gate     chan struct{}        // if set, Start waits for it (or ctx)
}

var _ supervisor = (*fakeSup)(nil)

func (s *fakeSup) Update(_ context.Context, cfg runtime.Config) error {
	s.mu.Lock()
	s.updates++
	if cfg.Hash != s.cfg.Hash && s.phase == runtime.PhaseRunning {
		s.restarts++
	}
	s.cfg = cfg
	hook := s.onUpdate
	s.mu.Unlock()
	if hook != nil {
		hook(cfg)
	}
	return nil
}

func (s *fakeSup) Start(ctx context.Context) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.startErr != nil {
		return s.startErr
	}
	s.starts++
	s.phase = runtime.PhaseRunning
	return nil
}

func (s *fakeSup) Stop(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops++
	s.phase = runtime.PhaseStopped
	return nil
}

func (s *fakeSup) Restart(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restarts++
	s.phase = runtime.PhaseRunning
	return nil
}

func (s *fakeSup) EnsureReady(context.Context) (string, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase != runtime.PhaseRunning {
		return "", nil, runtime.ErrStopped
	}
	return "127.0.0.1:10000", noRelease, nil
}

func (s *fakeSup) TryReady() (string, func(), bool) {
	addr, release, err := s.EnsureReady(context.Background())
	return addr, release, err == nil
}

func noRelease() {}

func (s *fakeSup) Snapshot() runtime.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return runtime.Status{Name: s.cfg.Name, Phase: s.phase, Hash: s.cfg.Hash}
}

func (s *fakeSup) Tail(int) ([]byte, error) { return []byte("log of " + s.cfg.Name + "\n"), nil }

// counts returns starts, stops, restarts under the lock.
func (s *fakeSup) counts() (starts, stops, restarts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts, s.stops, s.restarts
}

func (s *fakeSup) config() runtime.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// fakeProcs is a process manager of fakeSups.
type fakeProcs struct {
	mu       sync.Mutex
	sups     map[string]*fakeSup
	removed  []string
	recorded map[string][]byte // RecordedSpec's answers
}

var _ processes = (*fakeProcs)(nil)

func newFakeProcs() *fakeProcs { return &fakeProcs{sups: map[string]*fakeSup{}} }

func (p *fakeProcs) Supervise(cfg runtime.Config) supervisor {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.sups[cfg.Name]; ok {
		return s
	}
	s := &fakeSup{cfg: cfg, phase: runtime.PhaseStopped}
	p.sups[cfg.Name] = s
	return s
}

func (p *fakeProcs) RecordedSpec(name string) ([]byte, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, claimed := p.sups[name]; claimed {
		return nil, "", false
	}
	b, ok := p.recorded[name]
	return b, "recorded-hash", ok
}

func (p *fakeProcs) Get(name string) (supervisor, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sups[name]
	if !ok {
		return nil, false
	}
	return s, true
}

func (p *fakeProcs) Remove(_ context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sups, name)
	p.removed = append(p.removed, name)
	return nil
}

// sup returns the fake supervisor of name or nil.
func (p *fakeProcs) sup(name string) *fakeSup {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sups[name]
}

func (p *fakeProcs) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sups)
}

// startLoop runs l until the test ends and waits for its initial load.
func startLoop(t testing.TB, l *Loop) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case <-l.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("initial load did not finish")
	}
}

// newFakeLoop makes a loop over dir with fake processes and runs it.
func newFakeLoop(t testing.TB, dir string, mod func(*Options)) (*Loop, *fakeProcs) {
	t.Helper()
	procs := newFakeProcs()
	opts := Options{SpecsDir: dir, Debounce: 50 * time.Millisecond, Binary: "/usr/bin/llama-server"}
	if mod != nil {
		mod(&opts)
	}
	l, err := newLoop(opts, procs)
	if err != nil {
		t.Fatal(err)
	}
	startLoop(t, l)
	return l, procs
}

// waitFor polls cond every few milliseconds until it holds or the
// deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until the loop has no pending event, scan or pass: the
// queue is empty and every entry's last pass applied its generation.
func settle(t testing.TB, l *Loop) {
	t.Helper()
	waitFor(t, "the loop to settle", func() bool {
		if l.q.Len() != 0 {
			return false
		}
		l.mu.RLock()
		defer l.mu.RUnlock()
		for _, e := range l.entries {
			if e.appliedGen != e.gen {
				return false
			}
		}
		return true
	})
}

// writeFile writes a file (creating folders) with os.WriteFile, as an
// editor that writes in place does.
func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
