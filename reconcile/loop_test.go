package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"llamactl/internal/syncbuf"
	"llamactl/runtime"
	"llamactl/spec"
)

// model returns a valid spec file body; extra lines are appended.
func model(name string, extra ...string) string {
	return "model: /models/" + name + ".gguf\n" + strings.Join(extra, "\n") + "\n"
}

// waitScan waits until the watcher scanned at least once more after
// before (a write we made has been seen).
func waitScan(t *testing.T, l *Loop, before int64) {
	t.Helper()
	waitFor(t, "a rescan", func() bool { return l.scans.Load() > before })
}

func TestNewFileStartsInstance(t *testing.T) {
	dir := t.TempDir()
	l, procs := newFakeLoop(t, dir, nil)
	writeFile(t, filepath.Join(dir, "qwen.yaml"), model("qwen"))
	waitFor(t, "qwen to start", func() bool {
		s := procs.sup("qwen")
		return s != nil && s.Snapshot().Phase == runtime.PhaseRunning
	})
	settle(t, l)
	st, err := l.Get("qwen")
	if err != nil {
		t.Fatal(err)
	}
	if st.File != "qwen.yaml" || st.Format != spec.YAML || st.Desired != spec.StateRunning || st.Sync != "synced" || st.ETag == "" {
		t.Fatalf("status = %+v", st)
	}
	if st.DesiredHash != st.ObservedHash || st.Error != "" {
		t.Fatalf("hashes %q %q, error %q", st.DesiredHash, st.ObservedHash, st.Error)
	}
	wantConds := map[string]string{"SpecValid": "True", "Ready": "True", "Stalled": "False"}
	for _, c := range st.Conditions {
		if wantConds[c.Type] != c.Status {
			t.Errorf("condition %s = %s (%s), want %s", c.Type, c.Status, c.Reason, wantConds[c.Type])
		}
	}
	if len(st.Conditions) != 3 {
		t.Fatalf("conditions = %+v", st.Conditions)
	}
}

func TestEditRestartsOnlyThatInstance(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	a, b := procs.sup("a"), procs.sup("b")
	oldHash := a.config().Hash

	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "ctx_size: 4096"))
	waitFor(t, "a to restart", func() bool { _, _, r := a.counts(); return r == 1 })
	settle(t, l)
	if a.config().Hash == oldHash || !strings.Contains(strings.Join(a.config().Args, " "), "4096") {
		t.Fatalf("a runs %v", a.config().Args)
	}
	if s, st, r := b.counts(); s != 1 || st != 0 || r != 0 || b.updates != 0 {
		t.Fatalf("b was touched: starts %d stops %d restarts %d updates %d", s, st, r, b.updates)
	}
}

func TestCommentOnlyEditRestartsNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	writeFile(t, path, model("a"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	before, _ := l.Get("a")
	writeFile(t, path, "# the small model\n"+model("a", "# tuned later"))
	waitFor(t, "the new etag", func() bool { st, _ := l.Get("a"); return st.ETag != before.ETag })
	settle(t, l)
	a := procs.sup("a")
	if s, st, r := a.counts(); s != 1 || st != 0 || r != 0 || a.updates != 0 {
		t.Fatalf("comment edit touched the process: starts %d stops %d restarts %d updates %d", s, st, r, a.updates)
	}
}

func TestDeleteStopsAndRemoves(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to be removed", func() bool { return procs.sup("a") == nil })
	if _, err := l.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
	if len(l.List()) != 1 || procs.sup("b") == nil {
		t.Fatalf("list = %+v", l.List())
	}
}

func TestBrokenFileKeepsLastGoodSpec(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	writeFile(t, path, model("a"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	a := procs.sup("a")
	good := a.config().Hash

	writeFile(t, path, model("a", "ctx_sise: 4096"))
	waitFor(t, "the error on the status", func() bool { st, _ := l.Get("a"); return st.Error != "" })
	st, _ := l.Get("a")
	if !strings.HasPrefix(st.Error, "a.yaml:2:1: ") || !strings.Contains(st.Error, "ctx_sise") {
		t.Fatalf("error = %q, want a.yaml:2:1: ... ctx_sise ...", st.Error)
	}
	if st.Spec == nil || st.DesiredHash != good || st.Sync != "out_of_sync" {
		t.Fatalf("last good spec not kept: %+v", st)
	}
	if c := st.Conditions[0]; c.Type != "SpecValid" || c.Status != "False" || c.Message != st.Error {
		t.Fatalf("SpecValid = %+v", c)
	}
	settle(t, l)
	if s, stops, r := a.counts(); s != 1 || stops != 0 || r != 0 || a.config().Hash != good {
		t.Fatalf("broken file touched the process: starts %d stops %d restarts %d", s, stops, r)
	}

	writeFile(t, path, model("a", "ctx_size: 4096"))
	waitFor(t, "the fix to apply", func() bool { _, _, r := a.counts(); return r == 1 })
	settle(t, l)
	st, _ = l.Get("a")
	if st.Error != "" || st.Sync != "synced" || st.Conditions[0].Status != "True" {
		t.Fatalf("after fix: %+v", st)
	}
}

func TestNeverValidFileStartsNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.toml"), "model = \"/m.gguf\"\nctx_size = \"big\"\n")
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	st, err := l.Get("bad")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Error, "bad.toml:2:") || st.Spec != nil || procs.count() != 0 {
		t.Fatalf("status = %+v, procs %d", st, procs.count())
	}
}

func TestRenameWritesApplyOnce(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, path, data string)
	}{
		{"vim backup rename", func(t *testing.T, path, data string) {
			// vim with backupcopy=no: move the original away, write anew, drop the backup.
			must(t, os.Rename(path, path+"~"))
			must(t, os.WriteFile(path, []byte(data), 0o644))
			must(t, os.Remove(path+"~"))
		}},
		{"atomic writer", func(t *testing.T, path, data string) {
			tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp123")
			must(t, os.WriteFile(tmp, []byte(data), 0o644))
			must(t, os.Rename(tmp, path))
		}},
		{"swap file", func(t *testing.T, path, data string) {
			swp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
			must(t, os.WriteFile(swp, []byte("garbage: ["), 0o644))
			must(t, os.WriteFile(path, []byte(data), 0o644))
			must(t, os.Remove(swp))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a.yaml")
			writeFile(t, path, model("a"))
			l, procs := newFakeLoop(t, dir, nil)
			settle(t, l)
			a := procs.sup("a")
			tt.write(t, path, model("a", "ctx_size: 1024"))
			waitFor(t, "the edit to apply", func() bool { _, _, r := a.counts(); return r == 1 })
			settle(t, l)
			procs.mu.Lock()
			removed := len(procs.removed)
			procs.mu.Unlock()
			if s, st, r := a.counts(); s != 1 || st != 0 || r != 1 || removed != 0 || procs.sup("a") != a {
				t.Fatalf("starts %d stops %d restarts %d removed %d", s, st, r, removed)
			}
		})
	}
}

func TestNewSubfolderIsWatched(t *testing.T) {
	dir := t.TempDir()
	l, procs := newFakeLoop(t, dir, nil)
	writeFile(t, filepath.Join(dir, "team", "x", "a.yaml"), model("a"))
	waitFor(t, "a to start", func() bool { return procs.sup("a") != nil })
	writeFile(t, filepath.Join(dir, "team", "x", "b.yaml"), model("b"))
	waitFor(t, "b to start", func() bool { return procs.sup("b") != nil })
	settle(t, l)
	st, _ := l.Get("b")
	if st.File != filepath.Join("team", "x", "b.yaml") {
		t.Fatalf("file = %q", st.File)
	}
	writeFile(t, filepath.Join(dir, ".git", "c.yaml"), model("c"))
	writeFile(t, filepath.Join(dir, "d.yaml.swp"), model("d"))
	scans := l.scans.Load()
	l.Resync()
	waitScan(t, l, scans)
	if _, err := l.Get("c"); err == nil {
		t.Fatal("a file under .git was loaded")
	}
	if n := len(l.List()); n != 2 {
		t.Fatalf("instances = %d, want 2", n)
	}
}

func TestManyFilesOneBatch(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("m%02d.yaml", i)), model(fmt.Sprint(i)))
	}
	l, procs := newFakeLoop(t, dir, func(o *Options) { o.Debounce = 200 * time.Millisecond })
	settle(t, l)
	batches := l.batches.Load()
	for i := range 50 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("m%02d.yaml", i)), model(fmt.Sprint(i), "ctx_size: 2048"))
	}
	waitFor(t, "all 50 to restart", func() bool {
		for i := range 50 {
			if _, _, r := procs.sup(fmt.Sprintf("m%02d", i)).counts(); r != 1 {
				return false
			}
		}
		return true
	})
	settle(t, l)
	if got := l.batches.Load() - batches; got != 1 {
		t.Fatalf("batches = %d, want 1", got)
	}
}

func TestConflictReportedOnBoth(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "sub", "a.toml"), "model = \"/m/a.gguf\"\n")
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	st, err := l.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Error, "a.yaml") || !strings.Contains(st.Error, filepath.Join("sub", "a.toml")) || !strings.Contains(st.Error, ErrConflict.Error()) {
		t.Fatalf("error = %q", st.Error)
	}
	if procs.sup("a") != nil || procs.sup("b") == nil {
		t.Fatal("a conflicting name was started (or b was not)")
	}
	if _, err := l.Update("a", &spec.Spec{Model: ptr("/m/a.gguf")}, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("update of a conflicting name: %v", err)
	}

	// A conflict arising on a running instance keeps it as it is.
	writeFile(t, filepath.Join(dir, "sub", "b.json"), `{"model": "/m/other.gguf"}`)
	waitFor(t, "the conflict on b", func() bool { st, _ := l.Get("b"); return st.Error != "" })
	settle(t, l)
	if s, stops, r := procs.sup("b").counts(); s != 1 || stops != 0 || r != 0 {
		t.Fatalf("b touched by a conflict: %d %d %d", s, stops, r)
	}

	// Removing the second file resolves it.
	must(t, os.Remove(filepath.Join(dir, "sub", "a.toml")))
	waitFor(t, "a to start", func() bool { return procs.sup("a") != nil })
	settle(t, l)
	if st, _ := l.Get("a"); st.Error != "" || st.File != "a.yaml" {
		t.Fatalf("after resolving: %+v", st)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRetryWithBackoffUntilStartWorks(t *testing.T) {
	dir := t.TempDir()
	procs := newFakeProcs()
	l, err := newLoop(Options{SpecsDir: dir, Debounce: 20 * time.Millisecond}, procs)
	must(t, err)
	l.q.baseDelay = 5 * time.Millisecond
	// The supervisor refuses to start twice, then works.
	sup := &fakeSup{cfg: runtime.Config{Name: "a"}, phase: runtime.PhaseStopped, startErr: errors.New("no port free")}
	procs.sups["a"] = sup
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	startLoop(t, l)
	waitFor(t, "the Stalled condition", func() bool {
		st, _ := l.Get("a")
		return len(st.Conditions) == 3 && st.Conditions[2].Status == "True" && strings.Contains(st.Conditions[2].Message, "no port free")
	})
	sup.mu.Lock()
	sup.startErr = nil
	sup.mu.Unlock()
	waitFor(t, "the retry to start it", func() bool { return sup.Snapshot().Phase == runtime.PhaseRunning })
	settle(t, l)
	st, _ := l.Get("a")
	if st.Conditions[2].Status != "False" || st.Sync != "synced" {
		t.Fatalf("after recovery: %+v", st.Conditions)
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b", "stop_timeout: 3", "startup_timeout: 9", "restart_delay_seconds: 2", "max_restarts: 7",
		"auto_restart: false", "on_demand_start: true", "idle_timeout: 60", "host: 0.0.0.0", "port: 9999", "env:", "  FOO: bar"))
	def := Defaults{StopTimeout: 10 * time.Second, StartupTimeout: 30 * time.Second, RestartDelay: time.Second, MaxRestarts: 5}
	l, procs := newFakeLoop(t, dir, func(o *Options) { o.Defaults = def })
	settle(t, l)
	a, b := procs.sup("a").config(), procs.sup("b").config()
	if a.StopTimeout != def.StopTimeout || a.StartupTimeout != def.StartupTimeout || a.RestartDelay != def.RestartDelay ||
		a.MaxRestarts != 5 || !a.AutoRestart || a.OnDemand || a.Port != 0 || a.Binary != "/usr/bin/llama-server" {
		t.Fatalf("a = %+v", a)
	}
	if b.StopTimeout != 3*time.Second || b.StartupTimeout != 9*time.Second || b.RestartDelay != 2*time.Second || b.MaxRestarts != 7 ||
		b.AutoRestart || !b.OnDemand || b.IdleTimeout != time.Minute || b.Host != "0.0.0.0" || b.Port != 9999 || b.Env["FOO"] != "bar" {
		t.Fatalf("b = %+v", b)
	}
	for _, arg := range b.Args {
		if arg == "--port" || arg == "--host" {
			t.Fatalf("argv holds %s: %v", arg, b.Args)
		}
	}
}

func TestAcquireByNameAndAlias(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "alias: gpt-4o"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b", "state: stopped"))
	l, _ := newFakeLoop(t, dir, nil)
	settle(t, l)
	ctx := context.Background()
	for _, m := range []string{"a", "gpt-4o"} {
		name, addr, release, err := l.Acquire(ctx, m)
		if err != nil || name != "a" || addr == "" {
			t.Fatalf("Acquire(%s) = %q %q %v", m, name, addr, err)
		}
		release()
	}
	for _, m := range []string{"a", "gpt-4o"} {
		name, addr, release, ok := l.AcquireReady(m)
		if !ok || name != "a" || addr == "" {
			t.Fatalf("AcquireReady(%s) = %q %q %v", m, name, addr, ok)
		}
		release()
	}
	for _, m := range []string{"nope", "b"} {
		if _, _, _, ok := l.AcquireReady(m); ok {
			t.Fatalf("AcquireReady(%s) granted", m)
		}
	}
	if _, _, _, err := l.Acquire(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown model: %v", err)
	}
	if _, _, _, err := l.Acquire(ctx, "b"); !errors.Is(err, runtime.ErrStopped) {
		t.Fatalf("stopped model: %v", err)
	}
	if logs, err := l.Logs("a", 10); err != nil || !strings.Contains(string(logs), "log of a") {
		t.Fatalf("logs = %q %v", logs, err)
	}
	if _, err := l.Logs("nope", 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("logs of unknown: %v", err)
	}
}

// An alias that another instance's name or earlier alias already holds is
// not routed silently elsewhere: the losing instance says so.
func TestAliasConflictShownOnStatus(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "alias: chat"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b", "alias: chat"))
	writeFile(t, filepath.Join(dir, "c.yaml"), model("c", "alias: a"))
	l, _ := newFakeLoop(t, dir, nil)
	settle(t, l)
	conflict := func(name string) string {
		st, err := l.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range st.Conditions {
			if c.Type == "AliasConflict" && c.Status == "True" {
				return c.Message
			}
		}
		return ""
	}
	if msg := conflict("a"); msg != "" {
		t.Errorf("a holds its alias but reports %q", msg)
	}
	if msg := conflict("b"); !strings.Contains(msg, `instance "a"`) {
		t.Errorf("b's conflict = %q, want it to name instance a", msg)
	}
	if msg := conflict("c"); !strings.Contains(msg, `alias "a"`) {
		t.Errorf("c's conflict = %q, want it to name alias a", msg)
	}
	if name, _, release, err := l.Acquire(context.Background(), "chat"); err != nil || name != "a" {
		t.Fatalf("Acquire(chat) = %q, %v", name, err)
	} else {
		release()
	}
}

func BenchmarkAcquire(b *testing.B) {
	dir := b.TempDir()
	for i := range 100 {
		writeFile(b, filepath.Join(dir, fmt.Sprintf("m%d.yaml", i)), model(fmt.Sprint(i), fmt.Sprintf("alias: alias-%d", i)))
	}
	l, _ := newFakeLoop(b, dir, nil)
	settle(b, l)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _, release, err := l.Acquire(ctx, "alias-42")
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
}

func TestTerminalErrorWaitsForAChange(t *testing.T) {
	dir := t.TempDir()
	procs := newFakeProcs()
	l, err := newLoop(Options{SpecsDir: dir, Debounce: 20 * time.Millisecond}, procs)
	must(t, err)
	l.q.baseDelay = time.Millisecond
	var attempts atomic.Int32
	sup := &fakeSup{cfg: runtime.Config{Name: "a"}, phase: runtime.PhaseStopped}
	sup.startErr = fmt.Errorf("binary rejects the spec: %w", spec.ErrInvalid)
	sup.onUpdate = func(runtime.Config) { attempts.Add(1) }
	procs.sups["a"] = sup
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	startLoop(t, l)
	settle(t, l)
	st, _ := l.Get("a")
	if c := st.Conditions[2]; c.Status != "True" || c.Reason != "InvalidSpec" {
		t.Fatalf("Stalled = %+v", c)
	}
	time.Sleep(50 * time.Millisecond) // dozens of backoff periods
	sup.mu.Lock()
	sup.startErr = nil
	sup.mu.Unlock()
	if n := attempts.Load(); n != 1 {
		t.Fatalf("a terminal error was retried: %d attempts", n)
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "ctx_size: 64"))
	waitFor(t, "the changed spec to start", func() bool { return sup.Snapshot().Phase == runtime.PhaseRunning })
}

func TestSlowStartBlocksNoOther(t *testing.T) {
	dir := t.TempDir()
	procs := newFakeProcs()
	l, err := newLoop(Options{SpecsDir: dir, Debounce: 20 * time.Millisecond, Workers: 2}, procs)
	must(t, err)
	gate := make(chan struct{})
	procs.sups["slow"] = &fakeSup{cfg: runtime.Config{Name: "slow"}, phase: runtime.PhaseStopped, gate: gate}
	writeFile(t, filepath.Join(dir, "slow.yaml"), model("slow"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		must(t, <-done)
	}()
	waitFor(t, "the initial load", func() bool { return l.scans.Load() > 0 })
	for i := range 5 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("fast%d.yaml", i)), model("fast"))
	}
	waitFor(t, "the fast ones to start", func() bool {
		for i := range 5 {
			s := procs.sup(fmt.Sprintf("fast%d", i))
			if s == nil || s.Snapshot().Phase != runtime.PhaseRunning {
				return false
			}
		}
		return true
	})
	select {
	case <-l.Loaded():
		t.Fatal("Loaded closed before the first pass of slow ended")
	default:
	}
	close(gate)
	waitFor(t, "slow to start", func() bool { return procs.sup("slow").Snapshot().Phase == runtime.PhaseRunning })
	<-l.Loaded()
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer = syncbuf.Buffer

func TestPassesLogInstanceAndPassID(t *testing.T) {
	dir := t.TempDir()
	var buf syncBuffer
	log := zerolog.New(&buf)
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	l, _ := newFakeLoop(t, dir, func(o *Options) { o.Logger = &log })
	settle(t, l)
	out := buf.String()
	for _, want := range []string{`"component":"reconcile"`, `"instance":"a"`, `"pass":1`, `"message":"starting instance"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %s:\n%s", want, out)
		}
	}
}

// A failed instance is tried again when its spec changes in a field that
// does not change the process (a larger max_restarts), not only its hash.
func TestFailedInstanceRetriedOnRestartPolicyChange(t *testing.T) {
	dir := t.TempDir()
	l, procs := newFakeLoop(t, dir, nil)
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "max_restarts: 1"))
	waitFor(t, "a to start", func() bool {
		s := procs.sup("a")
		return s != nil && s.Snapshot().Phase == runtime.PhaseRunning
	})
	settle(t, l)
	a := procs.sup("a")
	a.mu.Lock()
	a.phase = runtime.PhaseFailed
	a.mu.Unlock()
	startsBefore, _, _ := a.counts()

	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "max_restarts: 1", "# a comment only"))
	settle(t, l)
	if starts, _, _ := a.counts(); starts != startsBefore {
		t.Fatalf("a comment-only edit started a failed instance (%d -> %d starts)", startsBefore, starts)
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "max_restarts: 5"))
	waitFor(t, "a to be started again", func() bool { s, _, _ := a.counts(); return s > startsBefore })
	if got := a.config().MaxRestarts; got != 5 {
		t.Fatalf("max_restarts = %d, want 5", got)
	}
}

// stop_timeout: 0 means no grace (SIGKILL right after SIGTERM), not the
// default; an absent stop_timeout takes the configured default.
func TestStopTimeoutZero(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "zero.yaml"), model("zero", "stop_timeout: 0"))
	writeFile(t, filepath.Join(dir, "five.yaml"), model("five", "stop_timeout: 5"))
	writeFile(t, filepath.Join(dir, "unset.yaml"), model("unset"))
	l, procs := newFakeLoop(t, dir, func(o *Options) { o.Defaults.StopTimeout = 7 * time.Second })
	settle(t, l)
	for name, want := range map[string]time.Duration{"zero": runtime.KillAtOnce, "five": 5 * time.Second, "unset": 7 * time.Second} {
		if got := procs.sup(name).config().StopTimeout; got != want {
			t.Errorf("%s: StopTimeout %v, want %v", name, got, want)
		}
	}
}

// An instance the loop has not given a supervisor yet is not ready since
// it appeared, not since the zero time.
func TestReadyConditionBeforeFirstPass(t *testing.T) {
	created := time.Unix(1700000000, 0)
	l := &Loop{sups: map[string]supervisor{}}
	st := l.statusLocked(&entry{name: "new", created: created})
	i := slices.IndexFunc(st.Conditions, func(c Condition) bool { return c.Type == "Ready" })
	if i < 0 {
		t.Fatalf("no Ready condition: %+v", st.Conditions)
	}
	if c := st.Conditions[i]; c.Status != "False" || !c.LastTransitionTime.Equal(created) {
		t.Fatalf("Ready = %+v, want False since %v", c, created)
	}
}

// A file broken when the daemon starts, whose instance's child of the
// previous run still runs, keeps running that child: its recorded spec is
// the last good one (routed by its alias, shown with the file's error).
func TestBrokenFileAtStartKeepsRecordedSpec(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a", "alias: aa", "temprature: 0.1"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b", "temprature: 0.1")) // no record
	rec, err := spec.Encode(specOf(t, model("a", "alias: aa")), spec.JSON)
	if err != nil {
		t.Fatal(err)
	}
	procs := newFakeProcs()
	procs.recorded = map[string][]byte{"a": rec}
	l, err := newLoop(Options{SpecsDir: dir, Debounce: 50 * time.Millisecond, Binary: "/usr/bin/llama-server"}, procs)
	if err != nil {
		t.Fatal(err)
	}
	startLoop(t, l)
	settle(t, l)

	st, err := l.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if st.Spec == nil || st.Spec.Alias == nil || *st.Spec.Alias != "aa" || !strings.Contains(st.Error, "temprature") {
		t.Fatalf("a: spec %+v, error %q", st.Spec, st.Error)
	}
	if c := st.Conditions[0]; c.Type != "SpecValid" || c.Reason != "InvalidSpecRecordedKept" || !strings.Contains(c.Message, "temprature") {
		t.Fatalf("SpecValid = %+v", c)
	}
	sup := procs.sup("a")
	if s, _, _ := sup.counts(); s != 1 || sup.config().Hash != st.DesiredHash || !bytes.Equal(sup.config().Spec, rec) {
		t.Fatalf("a's supervisor: starts %d, hash %q (desired %q)", s, sup.config().Hash, st.DesiredHash)
	}
	if name, _, release, err := l.Acquire(context.Background(), "aa"); err != nil || name != "a" {
		t.Fatalf("acquire by the recorded alias: %q, %v", name, err)
	} else {
		release()
	}

	if st, _ := l.Get("b"); st.Spec != nil {
		t.Fatalf("b, broken with no record, has a spec: %+v", st.Spec)
	}
	if _, ok := procs.Get("b"); ok {
		t.Fatal("b, broken with no record, got a supervisor")
	}
}

// An alias lists names comma-separated, as llama-server's --alias does:
// each routes to the instance.
func TestCommaSeparatedAliases(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "multi.yaml"), model("multi", `alias: "m1, m2"`))
	l, _ := newFakeLoop(t, dir, nil)
	settle(t, l)
	for _, m := range []string{"multi", "m1", "m2"} {
		name, _, release, err := l.Acquire(context.Background(), m)
		if err != nil || name != "multi" {
			t.Fatalf("acquire %q: %q, %v", m, name, err)
		}
		release()
	}
	if _, _, _, err := l.Acquire(context.Background(), "m1, m2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the list itself routed: %v", err)
	}
}
