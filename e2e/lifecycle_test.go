package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonRestart (7) kills or stops the daemon and starts a new one on
// the same specs and data directories: every instance is served again by
// exactly one process, either the adopted old one or a fresh one (the old
// one gone).
func TestDaemonRestart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		keep   bool
		signal syscall.Signal
		// adopt: the new daemon must adopt the very same process.
		adopt bool
		// edit: survivor's spec changes while no daemon runs, so its
		// kept process must be replaced, not adopted.
		edit bool
		// broken: survivor's file breaks while no daemon runs: its kept
		// process runs on with the spec it was recorded with.
		broken bool
	}{
		{"SIGKILL_KeepChildren", true, syscall.SIGKILL, false, false, false},
		{"SIGKILL_StopChildren", false, syscall.SIGKILL, false, false, false},
		{"SIGTERM_KeepChildren", true, syscall.SIGTERM, true, false, false},
		{"SIGTERM_KeepChildren_SpecEdited", true, syscall.SIGTERM, true, true, false},
		{"SIGTERM_KeepChildren_SpecBroken", true, syscall.SIGTERM, true, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fd := newFleetDir(t)
			opts := daemonOpts{Env: map[string]string{"LLAMACTL_SHUTDOWN_KEEP_CHILDREN": fmt.Sprint(c.keep)}}
			names := []string{"survivor", "second"}
			for _, n := range names {
				fd.writeSpec(t, n+".yaml", fd.specYAML(n, nil))
			}
			d1 := startDaemon(t, fd, opts)
			before := map[string]instance{}
			for _, n := range names {
				before[n] = d1.waitHealthy(n)
			}

			d1.signal(c.signal)
			code := d1.wait(20 * time.Second)
			if c.signal == syscall.SIGTERM && code != 0 {
				t.Fatalf("llamactl exit code %d after SIGTERM, want 0", code)
			}
			if c.adopt {
				for _, n := range names {
					if !alive(before[n].PID) {
						t.Fatalf("%s: pid %d did not survive a shutdown with keep_children", n, before[n].PID)
					}
				}
			}

			if c.edit {
				fd.writeSpec(t, "survivor.yaml", fd.specYAML("survivor", nil, "ctx_size: 3072"))
			}
			if c.broken {
				fd.writeSpec(t, "survivor.yaml", fd.specYAML("survivor", nil, "temprature: 0.1"))
			}

			d2 := startDaemon(t, fd, opts)
			for _, n := range names {
				old := before[n].PID
				edited := c.edit && n == "survivor"
				inst := d2.waitHealthy(n)
				if edited {
					inst = d2.waitInstance(n, "to replace the process of the old spec", func(i instance) bool {
						return i.Running && i.PID != old && alive(i.PID)
					})
					waitGone(t, old, n+"'s process of the old spec")
					if argv := readArgv(t, fd, n); !hasArgPair(argv, "--ctx-size", "3072") {
						t.Errorf("%s: argv %q after the edit, want --ctx-size 3072", n, argv)
					}
				} else if c.adopt && inst.PID != old {
					t.Errorf("%s: new daemon runs pid %d, want the kept pid %d adopted", n, inst.PID, old)
				}
				// Exactly one llama-server for the instance, and it is the
				// one the API reports.
				waitFor(t, 10*time.Second, n+" to have exactly one process", func() (bool, string) {
					pids := fd.instancePids(n)
					return len(pids) == 1 && pids[0] == inst.PID, fmt.Sprintf("live %v, API pid %d", pids, inst.PID)
				})
				if inst.PID == old {
					t.Logf("%s: adopted pid %d", n, old)
				} else {
					t.Logf("%s: restarted as pid %d (was %d)", n, inst.PID, old)
					waitGone(t, old, n+"'s process of the killed daemon")
				}
				d2.expectServedBy(d2.chat(n), inst.PID, n+" served by the new daemon")
				if c.broken && n == "survivor" && !strings.Contains(inst.Error, "temprature") {
					t.Errorf("%s: status error %q, want the broken file's", n, inst.Error)
				}
			}
			all := fd.children()
			if len(all) != len(names) {
				t.Errorf("live fakellama processes %v, want one per instance (%v)", all, names)
			}
		})
	}
}

// TestShutdown (9): SIGTERM makes llamactl exit 0 with every child gone,
// including one that ignores SIGTERM (it gets SIGKILL after stop_timeout),
// and a stream in flight is drained to its end first.
func TestShutdown(t *testing.T) {
	t.Parallel()
	fd := newFleetDir(t)
	fd.writeSpec(t, "one.yaml", fd.specYAML("one", nil))
	fd.writeSpec(t, "stubborn.yaml", fd.specYAML("stubborn",
		map[string]string{"FAKELLAMA_IGNORE_SIGTERM": "1"}, "stop_timeout: 1"))
	fd.writeSpec(t, "slow.yaml", fd.specYAML("slow",
		map[string]string{"FAKELLAMA_TOKENS": "10", "FAKELLAMA_TOKEN_DELAY": "100ms"}))
	// The stream takes about 1s; the drain timeout leaves room for a
	// loaded machine.
	d := startDaemon(t, fd, daemonOpts{Env: map[string]string{"LLAMACTL_SHUTDOWN_DRAIN_TIMEOUT": "15s"}})
	var pids []int
	for _, n := range []string{"one", "stubborn", "slow"} {
		pids = append(pids, d.waitHealthy(n).PID)
	}

	type result struct {
		events []string
		err    error
	}
	first := make(chan struct{})
	streamed := make(chan result, 1)
	go func() {
		events, _, err := d.stream("slow", first)
		streamed <- result{events, err}
	}()
	select {
	case <-first:
	case res := <-streamed:
		t.Fatalf("stream ended before SIGTERM: %q, %v", res.events, res.err)
	}

	start := time.Now()
	d.signal(syscall.SIGTERM)
	if code := d.wait(30 * time.Second); code != 0 {
		t.Errorf("llamactl exit code %d after SIGTERM, want 0", code)
	}
	res := <-streamed
	if res.err != nil || len(res.events) != 10+3 || last(res.events) != "[DONE]" {
		t.Errorf("stream in flight at SIGTERM: %d events ending %q, err %v; want 13 ending [DONE]", len(res.events), last(res.events), res.err)
	}
	t.Logf("shutdown took %s", time.Since(start).Round(time.Millisecond))
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("child pid %d outlived llamactl", pid)
		}
	}
	if left := fd.children(); len(left) > 0 {
		t.Errorf("fakellama processes left behind: %v", left)
	}
	if recs := d.log.records("llamactl stopped"); len(recs) != 1 {
		t.Errorf("want one \"llamactl stopped\" log line, got %d", len(recs))
	}
}

// TestShutdownAfterLogReaderLeft: a daemon whose log reader went away (a
// pipe to tee or a pager ended first by the same Ctrl-C, a journald
// restart) still shuts down cleanly on SIGTERM: its next log line must not
// kill it with SIGPIPE and leave its instances running.
func TestShutdownAfterLogReaderLeft(t *testing.T) {
	t.Parallel()
	fd := newFleetDir(t)
	fd.writeSpec(t, "one.yaml", fd.specYAML("one", nil))
	d := startDaemon(t, fd, daemonOpts{})
	pid := d.waitHealthy("one").PID

	d.readPipe.Close() // the daemon's stdout and stderr now lead nowhere
	select {
	case <-d.readDone:
	case <-time.After(10 * time.Second):
		t.Fatal("log reader did not stop after its pipe was closed")
	}
	// The daemon must be writing into the broken pipe: a request logs an
	// access line, the shutdown logs several.
	d.expectServedBy(d.chat("one"), pid, "chat with the log pipe closed")
	d.signal(syscall.SIGTERM)
	if code := d.wait(30 * time.Second); code != 0 {
		t.Errorf("llamactl exit code %d after SIGTERM with its log pipe closed, want 0 (%v)", code, d.waitErr)
	}
	if alive(pid) {
		t.Errorf("child pid %d outlived llamactl", pid)
	}
	if left := fd.children(); len(left) > 0 {
		t.Errorf("fakellama processes left behind: %v", left)
	}
}

// TestHungInstanceRestarts: an instance that stops answering while its
// process lives on (SIGSTOP here; a deadlock or a wedged GPU in life) is
// not left "running": after health.failures liveness probes in a row it
// is killed and restarted, and its status says why.
func TestHungInstanceRestarts(t *testing.T) {
	t.Parallel()
	fd := newFleetDir(t)
	fd.writeSpec(t, "wedged.yaml", fd.specYAML("wedged", nil, "stop_timeout: 1"))
	d := startDaemon(t, fd, daemonOpts{Env: map[string]string{
		"LLAMACTL_HEALTH_INTERVAL": "100ms",
		"LLAMACTL_HEALTH_TIMEOUT":  "500ms",
		"LLAMACTL_HEALTH_FAILURES": "3",
	}})
	before := d.waitHealthy("wedged")
	if err := syscall.Kill(before.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(before.PID, syscall.SIGCONT) // should the test fail before the kill
	after := d.waitInstance("wedged", "a new process after the hang", func(i instance) bool {
		return i.Running && i.PID != before.PID
	})
	if after.Restarts != 1 || !strings.Contains(after.LastError, "hung") {
		t.Errorf("after the hang: %v; want 1 restart and a last error saying hung", after)
	}
	if alive(before.PID) {
		t.Errorf("hung pid %d still alive", before.PID)
	}
	d.expectServedBy(d.chat("wedged"), after.PID, "chat after the restart")
	if recs := d.log.records("liveness probe failed"); len(recs) < 3 {
		t.Errorf("want 3 or more \"liveness probe failed\" warnings, got %d", len(recs))
	}
}
