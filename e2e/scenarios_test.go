package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// On-demand instances sleep without a process until a request names
// them, and go back to sleep after idle_timeout.
func testOnDemand(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "lazy.yaml", d.fd.specYAML("lazy", nil, "on_demand_start: true", "idle_timeout: 1"))
	d.waitInstance("lazy", "to sleep", func(i instance) bool { return i.Phase == "sleeping" && !i.Running })
	if pids := d.fd.instancePids("lazy"); len(pids) != 0 {
		t.Errorf("sleeping instance has processes %v", pids)
	}
	for round := 1; round <= 2; round++ {
		r := d.chat("lazy")
		d.expect(r, http.StatusOK, "request waking the on-demand instance")
		pid, _ := strconv.Atoi(r.Header.Get("X-Fake-Pid"))
		// (Not checked alive here: under load it may already have idled out.)
		if pid <= 0 || d.fd.readPid("lazy") != pid {
			t.Fatalf("round %d: answered by pid %d, but the child wrote pid %d", round, pid, d.fd.readPid("lazy"))
		}
		waitGone(t, pid, "idle on-demand instance")
		d.waitInstance("lazy", "to sleep after idling", func(i instance) bool { return i.Phase == "sleeping" && !i.Running })
	}
}

// Editing a spec file restarts that instance only; removing the file
// deletes the instance and stops its process.
func testFileEditAndRemove(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "edited.yaml", d.fd.specYAML("edited", nil, "ctx_size: 1024"))
	d.fd.writeSpec(t, "bystander.yaml", d.fd.specYAML("bystander", nil))
	edited := d.waitHealthy("edited")
	bystander := d.waitHealthy("bystander")

	d.fd.writeSpec(t, "edited.yaml", d.fd.specYAML("edited", nil, "ctx_size: 2048"))
	now := d.waitInstance("edited", "to restart with the edited spec", func(i instance) bool {
		return i.Running && i.PID != edited.PID && alive(i.PID)
	})
	waitGone(t, edited.PID, "edited instance's old process")
	waitFor(t, 5*time.Second, "the edited argv", func() (bool, string) {
		argv := readArgv(t, d.fd, "edited")
		return hasArgPair(argv, "--ctx-size", "2048"), strings.Join(argv, " ")
	})

	if err := os.Remove(filepath.Join(d.fd.SpecsDir, "edited.yaml")); err != nil {
		t.Fatal(err)
	}
	waitGone(t, now.PID, "instance whose file was removed")
	waitFor(t, 5*time.Second, "removed instance to be 404", func() (bool, string) {
		_, ok := d.instance("edited")
		return !ok, "still there"
	})
	if b, _ := d.instance("bystander"); b.PID != bystander.PID || !b.Running {
		t.Errorf("editing another file touched bystander: %s, was pid %d", b, bystander.PID)
	}
}

// An instance that keeps crashing at start is failed after max_restarts,
// with no process and an error; changing its spec brings it back.
func testCrashLoop(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "doomed.yaml", d.fd.specYAML("doomed",
		map[string]string{"FAKELLAMA_EXIT_AT_START": "3"}, "max_restarts: 2", "restart_delay_seconds: 0"))
	inst := d.waitInstance("doomed", "to fail", func(i instance) bool { return i.Phase == "failed" })
	if inst.Running || inst.LastError == "" {
		t.Errorf("failed instance: %s, want running false and a last_error", inst)
	}
	if pids := d.fd.instancePids("doomed"); len(pids) != 0 {
		t.Errorf("failed instance has processes %v", pids)
	}
	r := d.chat("doomed")
	var oaErr struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if r.Status == http.StatusOK || json.Unmarshal(r.Body, &oaErr) != nil || oaErr.Error.Message == "" {
		t.Errorf("request to a failed instance: %s, want an OpenAI-shaped error", r)
	}

	d.fd.writeSpec(t, "doomed.yaml", d.fd.specYAML("doomed", nil, "max_restarts: 2"))
	d.waitHealthy("doomed")
}

// Two files with one stem are a conflict shown on the instance; neither
// runs. Removing one resolves it.
func testNameConflict(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "twin.yaml", d.fd.specYAML("twin", nil))
	d.fd.writeSpec(t, "twin.toml", "model = \"/models/twin.gguf\"\n")
	inst := d.waitInstance("twin", "to show the name conflict", func(i instance) bool {
		return strings.Contains(i.Error, "twin.yaml") && strings.Contains(i.Error, "twin.toml")
	})
	if inst.Running {
		t.Errorf("conflicting instance runs: %s", inst)
	}
	if pids := d.fd.instancePids("twin"); len(pids) != 0 {
		t.Errorf("conflicting instance has processes %v", pids)
	}
	if err := os.Remove(filepath.Join(d.fd.SpecsDir, "twin.toml")); err != nil {
		t.Fatal(err)
	}
	inst = d.waitHealthy("twin")
	if inst.Error != "" {
		t.Errorf("resolved conflict still shows error %q", inst.Error)
	}
}

// The server endpoints run the configured binary; the OpenAPI document
// is served.
func testServerEndpoints(d *daemon) {
	t := d.t
	for _, c := range []struct{ path, want string }{
		{"/api/v1/server/version", "version: 9431"},
		{"/api/v1/server/help", "--ctx-size"},
		{"/api/v1/server/devices", "Available devices"},
	} {
		r := d.call("GET", c.path, nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("GET %s: %.200s, want 200 containing %q", c.path, r, c.want)
		}
	}
	r := d.call("GET", "/api/v1/openapi.json", nil)
	d.expect(r, http.StatusOK, "openapi document")
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	decode(t, r, &doc)
	found := false
	for p := range doc.Paths {
		found = found || strings.HasSuffix(p, "/instances/{name}")
	}
	if !found {
		t.Errorf("openapi.json has no /instances/{name} path among %d paths", len(doc.Paths))
	}
}

// A spec's own port is used as is (not leased from the range), and the
// instance is reachable there.
func testExplicitPort(d *daemon) {
	t := d.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	d.fd.writeSpec(t, "pinned.yaml", d.fd.specYAML("pinned", nil, fmt.Sprintf("port: %d", port)))
	inst := d.waitHealthy("pinned")
	if inst.Port != port {
		t.Errorf("API port %d, want the spec's %d", inst.Port, port)
	}
	if argv := readArgv(t, d.fd, "pinned"); !hasArgPair(argv, "--port", strconv.Itoa(port)) {
		t.Errorf("argv %q lacks --port %d", argv, port)
	}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
	if err != nil {
		t.Fatalf("health on the spec's port: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Fake-Pid") != strconv.Itoa(inst.PID) {
		t.Errorf("health on port %d: %d from pid %q, want 200 from %d", port, resp.StatusCode, resp.Header.Get("X-Fake-Pid"), inst.PID)
	}
}

// Stopping an instance signals its whole process group and escalates to
// SIGKILL after stop_timeout when SIGTERM is ignored.
func testStopEscalation(d *daemon) {
	t := d.t
	gcFile := filepath.Join(d.fd.PidDir, "stubborn.grandchild.pid")
	d.fd.writeSpec(t, "stubborn.yaml", d.fd.specYAML("stubborn", map[string]string{
		"FAKELLAMA_IGNORE_SIGTERM":     "1",
		"FAKELLAMA_GRANDCHILD":         "1",
		"FAKELLAMA_GRANDCHILD_PIDFILE": gcFile,
	}, "stop_timeout: 1"))
	inst := d.waitHealthy("stubborn")
	var grandchild int
	waitFor(t, 5*time.Second, "the grandchild's pid file", func() (bool, string) {
		b, err := os.ReadFile(gcFile)
		grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && alive(grandchild), fmt.Sprint(err)
	})

	start := time.Now()
	r := d.call("POST", "/api/v1/instances/stubborn/stop", nil)
	d.expect(r, http.StatusOK, "stop stubborn")
	waitGone(t, inst.PID, "instance ignoring SIGTERM")
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("stubborn instance gone after %s, before its stop_timeout of 1s", took)
	}
	waitGone(t, grandchild, "grandchild in the instance's process group")
}
