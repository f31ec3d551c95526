package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// TestFleet runs one daemon and exercises it through spec files, the
// management API and the OpenAI proxy. Each subtest owns its instances,
// so they run in parallel against the same daemon.
func TestFleet(t *testing.T) {
	t.Parallel()
	fd := newFleetDir(t)
	d := startDaemon(t, fd, daemonOpts{})

	t.Run("SpecFileBecomesHealthy", func(t *testing.T) {
		t.Parallel()
		testSpecFileBecomesHealthy(d.on(t))
	})
	t.Run("OpenAIProxy", func(t *testing.T) {
		t.Parallel()
		testOpenAIProxy(d.on(t))
	})
	t.Run("APICreateWritesSpecFile", func(t *testing.T) {
		t.Parallel()
		testAPICreate(d.on(t))
	})
	t.Run("APIUpdateKeepsTOML", func(t *testing.T) {
		t.Parallel()
		testAPIUpdateTOML(d.on(t))
	})
	t.Run("APIUpdateKeepsSecrets", func(t *testing.T) {
		t.Parallel()
		testAPIUpdateSecrets(d.on(t))
	})
	t.Run("StopAndStartViaAPI", func(t *testing.T) {
		t.Parallel()
		testStopStart(d.on(t))
	})
	t.Run("KilledChildIsRestarted", func(t *testing.T) {
		t.Parallel()
		testChildKilled(d.on(t))
	})
	t.Run("BrokenFileKeepsLastGood", func(t *testing.T) {
		t.Parallel()
		testBrokenFile(d.on(t))
	})
	t.Run("OnDemandAndIdle", func(t *testing.T) {
		t.Parallel()
		testOnDemand(d.on(t))
	})
	t.Run("FileEditAndRemove", func(t *testing.T) {
		t.Parallel()
		testFileEditAndRemove(d.on(t))
	})
	t.Run("CrashLoopFails", func(t *testing.T) {
		t.Parallel()
		testCrashLoop(d.on(t))
	})
	t.Run("NameConflict", func(t *testing.T) {
		t.Parallel()
		testNameConflict(d.on(t))
	})
	t.Run("ServerEndpoints", func(t *testing.T) {
		t.Parallel()
		testServerEndpoints(d.on(t))
	})
	t.Run("Embeddings", func(t *testing.T) {
		t.Parallel()
		testEmbeddings(d.on(t))
	})
	t.Run("ConcurrentProxy", func(t *testing.T) {
		t.Parallel()
		testConcurrentProxy(d.on(t))
	})
	t.Run("HangUpCancels", func(t *testing.T) {
		t.Parallel()
		testHangUpCancels(d.on(t))
	})
	t.Run("StopEscalation", func(t *testing.T) {
		t.Parallel()
		testStopEscalation(d.on(t))
	})
	t.Run("ExplicitPort", func(t *testing.T) {
		t.Parallel()
		testExplicitPort(d.on(t))
	})
}

// 1. A spec file written into the directory becomes a healthy, listed
// instance whose process runs in its own process group.
func testSpecFileBecomesHealthy(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "alpha.yaml", d.fd.specYAML("alpha", map[string]string{"E2E_CUSTOM": "from the spec"},
		"ctx_size: 1024", "extra_args: [--no-warmup]", "state: running"))
	inst := d.waitHealthy("alpha")
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", inst.PID)); err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00E2E_CUSTOM=from the spec\x00")) {
		t.Errorf("child environment lacks the spec's env E2E_CUSTOM (err %v)", err)
	}

	if got := d.fd.readPid("alpha"); got != inst.PID {
		t.Errorf("API pid %d, but the child wrote pid %d", inst.PID, got)
	}
	if pgid, err := syscall.Getpgid(inst.PID); err != nil || pgid != inst.PID {
		t.Errorf("child pid %d: process group %d (err %v), want its own group", inst.PID, pgid, err)
	}
	if inst.Port < d.fd.PortMin || inst.Port > d.fd.PortMax {
		t.Errorf("port %d outside the configured range %d-%d", inst.Port, d.fd.PortMin, d.fd.PortMax)
	}
	if argv := readArgv(t, d.fd, "alpha"); !hasArgPair(argv, "--ctx-size", "1024") || !hasArgPair(argv, "--port", fmt.Sprint(inst.Port)) ||
		!slices.Contains(argv, "--no-warmup") {
		t.Errorf("child argv %q lacks --ctx-size 1024, --port %d or the extra arg --no-warmup", argv, inst.Port)
	}

	r := d.call("GET", "/api/v1/instances", nil)
	d.expect(r, http.StatusOK, "list instances")
	var list []instance
	decode(t, r, &list)
	i := slices.IndexFunc(list, func(i instance) bool { return i.Name == "alpha" })
	if i < 0 || !list[i].Running {
		t.Errorf("list does not show alpha running: %s", r)
	}

	r = d.call("GET", "/api/v1/instances/alpha", nil)
	checkInstanceJSON(t, r, "alpha.yaml")
	for _, f := range []string{"logs/alpha.log", "run/alpha.json"} {
		if _, err := os.Stat(filepath.Join(d.fd.DataDir, f)); err != nil {
			t.Errorf("data dir: %v", err)
		}
	}
	waitFor(t, 5*time.Second, "alpha's log via the API", func() (bool, string) {
		r := d.call("GET", "/api/v1/instances/alpha/logs?lines=1000", nil)
		return r.Status == http.StatusOK && bytes.Contains(r.Body, []byte("model loaded")), r.String()
	})
	r = d.call("GET", "/api/v1/instances/alpha/logs?lines=3", nil)
	if n := len(strings.Split(strings.TrimRight(string(r.Body), "\n"), "\n")); r.Status != http.StatusOK || n != 3 {
		t.Errorf("logs?lines=3: status %d, %d lines, want 3:\n%s", r.Status, n, r.Body)
	}
	if r := d.call("GET", "/api/v1/instances/missing", nil); r.Status != http.StatusNotFound {
		t.Errorf("GET unknown instance: %s, want 404", r)
	}
}

// 6. A child killed with SIGKILL is restarted: new pid, healthy again,
// restart count up.
func testChildKilled(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "crashy.yaml", d.fd.specYAML("crashy", nil, "auto_restart: true", "max_restarts: 5"))
	inst := d.waitHealthy("crashy")
	if err := syscall.Kill(inst.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	after := d.waitInstance("crashy", "to be restarted after SIGKILL", func(i instance) bool {
		return i.Running && i.PID != inst.PID && alive(i.PID)
	})
	if after.Restarts <= inst.Restarts {
		t.Errorf("restarts %d after a crash, want more than %d", after.Restarts, inst.Restarts)
	}
	if pids := d.fd.instancePids("crashy"); len(pids) != 1 || pids[0] != after.PID {
		t.Errorf("crashy processes %v, want exactly [%d]", pids, after.PID)
	}
	d.expectServedBy(d.chat("crashy"), after.PID, "chat after crash restart")
}

// 8. A broken file shows its error with a line number on the instance,
// the last good spec keeps running, other instances keep serving, and a
// fix that only adds a comment restarts nothing.
func testBrokenFile(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "steady.yaml", d.fd.specYAML("steady", nil))
	good := d.fd.specYAML("fragile", nil)
	d.fd.writeSpec(t, "fragile.yaml", good)
	steady := d.waitHealthy("steady")
	fragile := d.waitHealthy("fragile")
	goodLines := strings.Count(good, "\n")

	cases := []struct {
		name    string
		content string
		// lines the error may point at (a syntax error at the end of the
		// file may be reported there)
		lines []int
		want  string // substring of the error
	}{
		{"syntax", good + "ctx_size: [oops\n", []int{goodLines + 1, goodLines + 2}, ""},
		{"unknown key", good + "ctx_sise: 4096\n", []int{goodLines + 1}, "ctx_sise"},
		{"wrong type", good + "ctx_size: lots\n", []int{goodLines + 1}, ""},
	}
	lineRE := regexp.MustCompile(`fragile\.yaml:(\d+):\d+:`)
	for _, c := range cases {
		d.fd.writeSpec(t, "fragile.yaml", c.content)
		inst := d.waitInstance("fragile", "to show the "+c.name+" error", func(i instance) bool { return i.Error != "" })
		m := lineRE.FindStringSubmatch(inst.Error)
		if m == nil || !slices.Contains(c.lines, atoi(m[1])) || !strings.Contains(inst.Error, c.want) {
			t.Errorf("%s: error %q, want fragile.yaml:LINE:COL: with LINE in %v mentioning %q", c.name, inst.Error, c.lines, c.want)
		}
		if !inst.Running || inst.PID != fragile.PID || !alive(fragile.PID) {
			t.Errorf("%s: broken file stopped the last good process: %s (was pid %d)", c.name, inst, fragile.PID)
		}
		d.expectServedBy(d.chat("steady"), steady.PID, c.name+": the other instance still serves")
		d.expectServedBy(d.chat("fragile"), fragile.PID, c.name+": the broken one still serves its last good spec")
		// Go back to a good file before the next case so each error is fresh.
		d.fd.writeSpec(t, "fragile.yaml", "# fixed\n"+good)
		d.waitInstance("fragile", "to clear the error", func(i instance) bool { return i.Error == "" })
	}
	inst, _ := d.instance("fragile")
	if inst.PID != fragile.PID || !inst.Running {
		t.Errorf("fixing the file with a comment restarted the instance: %s, was pid %d", inst, fragile.PID)
	}
	if now, _ := d.instance("steady"); now.PID != steady.PID {
		t.Errorf("an unrelated broken file restarted steady: pid %d -> %d", steady.PID, now.PID)
	}
}

// readArgv returns the argv the child of instance name last wrote.
func readArgv(t testing.TB, fd *fleetDir, name string) []string {
	t.Helper()
	b, err := os.ReadFile(fd.argvFile(name))
	if err != nil {
		return nil
	}
	var argv []string
	if err := json.Unmarshal(b, &argv); err != nil {
		t.Errorf("argv file of %s: %v", name, err)
	}
	return argv
}

// hasArgPair reports whether argv has flag immediately followed by value.
func hasArgPair(argv []string, flag, value string) bool {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag && argv[i+1] == value {
			return true
		}
	}
	return slices.Contains(argv, flag+"="+value)
}

// specState decodes a YAML spec file and returns its state key.
func specState(t testing.TB, fd *fleetDir, file string) string {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(fd.readSpec(t, file), &m); err != nil {
		t.Fatalf("%s is not YAML: %v", file, err)
	}
	s, _ := m["state"].(string)
	return s
}

// sameJSON reports whether a and b encode to the same JSON (so 2048 as
// int, uint64 or float64 compare equal).
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// checkInstanceJSON checks the shape of a healthy instance's JSON: the
// seed's fields keep their types (created is an integer), the additions
// are present, and the ETag header is the quoted etag field.
func checkInstanceJSON(t testing.TB, r response, source string) {
	t.Helper()
	var m map[string]any
	decode(t, r, &m)
	kinds := map[string]string{
		"name": "string", "created": "number", "running": "bool",
		"phase": "string", "status": "string", "port": "number", "pid": "number",
		"restarts": "number", "conditions": "array", "source": "string",
		"etag": "string", "sync": "string", "options": "object",
	}
	for k, want := range kinds {
		if got := jsonKind(m[k]); got != want {
			t.Errorf("instance JSON: %s is %s (%v), want %s", k, got, m[k], want)
		}
	}
	if c, ok := m["created"].(float64); !ok || c != float64(int64(c)) || c <= 0 {
		t.Errorf("instance JSON: created = %v, want a positive integer (unix time)", m["created"])
	}
	if m["source"] != source || m["running"] != true || m["sync"] != "synced" {
		t.Errorf("instance JSON: source %v running %v sync %v, want %s, true, synced", m["source"], m["running"], m["sync"], source)
	}
	ready := false
	conds, _ := m["conditions"].([]any)
	for _, c := range conds {
		if c, ok := c.(map[string]any); ok && c["type"] == "Ready" {
			ready = c["status"] == "True"
		}
	}
	if !ready {
		t.Errorf("instance JSON: no Ready=True condition among %v", m["conditions"])
	}
	etag, _ := m["etag"].(string)
	if h := r.Header.Get("ETag"); strings.Trim(strings.TrimPrefix(h, "W/"), `"`) != etag || etag == "" {
		t.Errorf("ETag header %q does not carry the etag field %q", h, etag)
	}
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "absent or null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
