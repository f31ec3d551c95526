package reconcile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llamactl/runtime"
	"llamactl/spec"
)

func TestCreateUpdateDelete(t *testing.T) {
	dir := t.TempDir()
	l, procs := newFakeLoop(t, dir, nil)

	tests := []struct {
		name   string
		format spec.Format
		file   string
	}{
		{"y", "", "y.yaml"},
		{"t", spec.TOML, "t.toml"},
		{"j", spec.JSON, "j.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := l.Create(tt.name, &spec.Spec{Model: ptr("/m/" + tt.name + ".gguf")}, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if st.File != tt.file || st.ETag == "" {
				t.Fatalf("status = %+v", st)
			}
			data, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil || etagOf(data) != st.ETag {
				t.Fatalf("file %s: %v, etag %s vs %s", tt.file, err, etagOf(data), st.ETag)
			}
			waitFor(t, "the start", func() bool { return procs.sup(tt.name) != nil })
			if _, err := l.Create(tt.name, &spec.Spec{Model: ptr("/m/x.gguf")}, ""); !errors.Is(err, ErrExists) {
				t.Fatalf("second create: %v", err)
			}

			if _, err := l.Update(tt.name, &spec.Spec{Model: ptr("/m/2.gguf")}, "0123"); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("stale If-Match: %v", err)
			}
			st2, err := l.Update(tt.name, &spec.Spec{Model: ptr("/m/2.gguf")}, st.ETag)
			if err != nil {
				t.Fatal(err)
			}
			if st2.ETag == st.ETag || *st2.Spec.Model != "/m/2.gguf" || st2.File != tt.file {
				t.Fatalf("after update: %+v", st2)
			}
			if err := l.Delete(tt.name, st.ETag); !errors.Is(err, ErrPreconditionFailed) {
				t.Fatalf("delete with a stale etag: %v", err)
			}
			if err := l.Delete(tt.name, st2.ETag); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, tt.file)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("file still there: %v", err)
			}
			waitFor(t, "the removal", func() bool { return procs.sup(tt.name) == nil })
		})
	}
	if _, err := l.Update("nope", &spec.Spec{Model: ptr("/m")}, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := l.Delete("nope", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
}

func TestInvalidWritesWriteNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	l, _ := newFakeLoop(t, dir, nil)
	settle(t, l)
	before, _ := os.ReadFile(filepath.Join(dir, "a.yaml"))
	tests := []struct {
		name string
		do   func() error
	}{
		{"create without model", func() error { _, err := l.Create("b", &spec.Spec{}, ""); return err }},
		{"create bad name", func() error { _, err := l.Create("-b", &spec.Spec{Model: ptr("/m")}, ""); return err }},
		{"create nil", func() error { _, err := l.Create("b", nil, ""); return err }},
		{"update name key", func() error { _, err := l.Update("a", &spec.Spec{Name: "z", Model: ptr("/m")}, ""); return err }},
		{"state value", func() error { _, err := l.SetState(context.Background(), "a", "paused"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, spec.ErrInvalid) {
				t.Fatalf("err = %v, want spec.ErrInvalid", err)
			}
		})
	}
	after, _ := os.ReadFile(filepath.Join(dir, "a.yaml"))
	ents, _ := os.ReadDir(dir)
	if string(after) != string(before) || len(ents) != 1 {
		t.Fatalf("something was written: %q, %d files", after, len(ents))
	}
}

func TestUpdateKeepsYAMLComments(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	writeFile(t, path, "# production model\nmodel: /m/a.gguf # pinned\nctx_size: 1024\n")
	l, _ := newFakeLoop(t, dir, nil)
	settle(t, l)
	st, _ := l.Get("a")
	ns := st.Spec.Clone()
	ns.Alias = ptr("chat")
	if _, err := l.Update("a", ns, st.ETag); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"# production model", "# pinned", "alias: chat", "ctx_size: 1024"} {
		if !strings.Contains(string(data), want) {
			t.Fatalf("file lost %q:\n%s", want, data)
		}
	}
}

func TestOwnWritesCauseNoExtraRestarts(t *testing.T) {
	dir := t.TempDir()
	l, procs := newFakeLoop(t, dir, nil)
	st, err := l.Create("a", &spec.Spec{Model: ptr("/m/a.gguf")}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Applied at once, without waiting for the watcher.
	waitFor(t, "a to start", func() bool { return procs.sup("a") != nil })
	a := procs.sup("a")
	waitSeen(t, l, filepath.Join(dir, "a.yaml"))

	ns := st.Spec.Clone()
	ns.Alias = ptr("chat") // changes argv: one restart
	if _, err := l.Update("a", ns, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart", func() bool { _, _, r := a.counts(); return r == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err = l.SetState(ctx, "a", spec.StateStopped)
	if err != nil {
		t.Fatal(err)
	}
	if st.Desired != spec.StateStopped || a.Snapshot().Phase != runtime.PhaseStopped {
		t.Fatalf("SetState returned before the stop: %+v", st)
	}
	if _, err := l.SetState(ctx, "a", spec.StateRunning); err != nil {
		t.Fatal(err)
	}
	// Let the watcher see the last write, then check nothing more happened.
	waitSeen(t, l, filepath.Join(dir, "a.yaml"))
	settle(t, l)
	if s, stops, r := a.counts(); s != 2 || stops != 1 || r != 1 || a.updates != 1 {
		t.Fatalf("starts %d stops %d restarts %d updates %d, want 2 1 1 1", s, stops, r, a.updates)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "a.yaml"))
	if !strings.Contains(string(data), "state: running") {
		t.Fatalf("state not written:\n%s", data)
	}
}

// waitSeen waits until a scan has read path with its current content.
func waitSeen(t testing.TB, l *Loop, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	real, err := filepath.EvalSymlinks(path)
	must(t, err)
	waitFor(t, "the watcher to read "+path, func() bool {
		l.writeMu.Lock()
		defer l.writeMu.Unlock()
		c, ok := l.scan.cache[real]
		return ok && c.file.etag == etagOf(data)
	})
}

func TestAPIWriteRacingFileEdit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	writeFile(t, path, model("a"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	st, _ := l.Get("a")

	edited := model("a", "ctx_size: 777")
	l.beforeSwap = func(string) {
		// An editor saves between our read and our rename.
		must(t, os.WriteFile(path, []byte(edited), 0o644))
	}
	_, err := l.Update("a", &spec.Spec{Model: ptr("/m/api.gguf")}, st.ETag)
	l.beforeSwap = nil
	if !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("the loser got %v, want ErrPreconditionFailed", err)
	}
	data, _ := os.ReadFile(path)
	if string(data) != edited {
		t.Fatalf("the editor's save was lost:\n%s", data)
	}
	waitFor(t, "the editor's change to apply", func() bool {
		return strings.Contains(strings.Join(procs.sup("a").config().Args, " "), "777")
	})
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp file left behind: %v", ents)
	}
	// With the fresh ETag the API write goes through.
	st, _ = l.Get("a")
	if _, err := l.Update("a", &spec.Spec{Model: ptr("/m/api.gguf")}, st.ETag); err != nil {
		t.Fatal(err)
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	l, procs := newFakeLoop(t, dir, func(o *Options) { o.ReadOnly = true })
	settle(t, l)
	ctx := context.Background()
	s := &spec.Spec{Model: ptr("/m")}
	for name, do := range map[string]func() error{
		"create":   func() error { _, err := l.Create("b", s, ""); return err },
		"update":   func() error { _, err := l.Update("a", s, ""); return err },
		"delete":   func() error { return l.Delete("a", "") },
		"setstate": func() error { _, err := l.SetState(ctx, "a", "stopped"); return err },
	} {
		if err := do(); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: %v, want ErrReadOnly", name, err)
		}
	}
	// Restart changes no file: allowed.
	if _, err := l.Restart(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, r := procs.sup("a").counts(); r != 1 {
		t.Fatalf("restarts = %d", r)
	}
	if !l.Status().ReadOnly {
		t.Fatal("status not read-only")
	}
}

func TestScanBeforeOwnWriteEventKeepsTheWrite(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), model("a"))
	writeFile(t, filepath.Join(dir, "b.yaml"), model("b"))
	l, procs := newFakeLoop(t, dir, nil)
	settle(t, l)
	waitSeen(t, l, filepath.Join(dir, "b.yaml"))
	if _, err := l.Update("a", &spec.Spec{Model: ptr("/m/a.gguf"), Alias: ptr("x")}, ""); err != nil {
		t.Fatal(err)
	}
	// A batch for another file, scanned before the watcher reported our
	// write, must not bring back a's old content.
	l.writeMu.Lock()
	real, _ := filepath.EvalSymlinks(filepath.Join(dir, "b.yaml"))
	res := l.scan.scan(false, false, map[string]struct{}{real: {}})
	changed, _ := l.apply(res)
	l.writeMu.Unlock()
	if len(changed) != 0 {
		t.Fatalf("changed = %v, want nothing", changed)
	}
	settle(t, l)
	if _, _, r := procs.sup("a").counts(); r != 1 {
		t.Fatalf("restarts = %d, want 1", r)
	}
}

func TestETagMatches(t *testing.T) {
	for _, c := range []struct {
		ifMatch string
		want    bool
	}{
		{`"abc"`, true}, {`abc`, true}, {`*`, true}, {`"x", "abc"`, true}, {` "x" ,abc `, true},
		{`W/"abc"`, false}, {`"x"`, false}, {`"x", W/"abc"`, false}, {`"abcd"`, false}, {``, false},
	} {
		if got := ETagMatches(c.ifMatch, "abc"); got != c.want {
			t.Errorf("ETagMatches(%q) = %v, want %v", c.ifMatch, got, c.want)
		}
	}
}

// UpdateFrom's fill sees the file as it is on disk when it is written,
// even when the loop has not read an outside edit yet.
func TestUpdateFromReadsDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	writeFile(t, path, model("a", "api_key: old-key"))
	l, _ := newFakeLoop(t, dir, func(o *Options) { o.Debounce = time.Hour })
	settle(t, l)
	writeFile(t, path, model("a", "api_key: new-key")) // not seen yet: the debounce is an hour
	var seen string
	st, err := l.UpdateFrom("a", specOf(t, model("a", "ctx_size: 2048")), "", func(cur, s *spec.Spec) {
		if cur != nil && cur.APIKey != nil {
			seen = *cur.APIKey
		}
		s.APIKey = cur.APIKey
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if seen != "new-key" || !strings.Contains(string(data), "new-key") || !strings.Contains(string(data), "2048") {
		t.Fatalf("fill saw %q; file:\n%s", seen, data)
	}
	if st.Spec == nil || st.Spec.APIKey == nil || *st.Spec.APIKey != "new-key" {
		t.Fatalf("status spec %+v", st.Spec)
	}
	if _, err := l.UpdateFrom("a", specOf(t, model("a")), `W/"`+st.ETag+`"`, func(_, _ *spec.Spec) {}); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("weak If-Match: %v", err)
	}
}
