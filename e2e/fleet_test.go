package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/pelletier/go-toml/v2"
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
	t.Run("ExplicitPort", func(t *testing.T) {
		t.Parallel()
		testExplicitPort(d.on(t))
	})
}

// 1. A spec file written into the directory becomes a healthy, listed
// instance whose process runs in its own process group.
func testSpecFileBecomesHealthy(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "alpha.yaml", d.fd.specYAML("alpha", nil, "ctx_size: 1024"))
	inst := d.waitHealthy("alpha")

	if got := d.fd.readPid("alpha"); got != inst.PID {
		t.Errorf("API pid %d, but the child wrote pid %d", inst.PID, got)
	}
	if pgid, err := syscall.Getpgid(inst.PID); err != nil || pgid != inst.PID {
		t.Errorf("child pid %d: process group %d (err %v), want its own group", inst.PID, pgid, err)
	}
	if inst.Port < d.fd.PortMin || inst.Port > d.fd.PortMax {
		t.Errorf("port %d outside the configured range %d-%d", inst.Port, d.fd.PortMin, d.fd.PortMax)
	}
	if argv := readArgv(t, d.fd, "alpha"); !hasArgPair(argv, "--ctx-size", "1024") || !hasArgPair(argv, "--port", fmt.Sprint(inst.Port)) {
		t.Errorf("child argv %q lacks --ctx-size 1024 or --port %d", argv, inst.Port)
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
	if r.Header.Get("ETag") == "" {
		t.Errorf("GET instance has no ETag header: %v", r.Header)
	}
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

// 2. The OpenAI proxy routes by model name and alias, JSON and streaming,
// and answers an unknown model with an OpenAI-shaped 400.
func testOpenAIProxy(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "chat.yaml", d.fd.specYAML("chat", map[string]string{"FAKELLAMA_TOKENS": "5"}, "alias: chatty"))
	inst := d.waitHealthy("chat")

	r := d.chat("chat")
	d.expectServedBy(r, inst.PID, "chat completion by name")
	var comp struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	decode(t, r, &comp)
	if len(comp.Choices) != 1 || comp.Choices[0].Message.Content == "" {
		t.Errorf("completion has no content: %s", r)
	}
	if r.Header.Get("X-Fake-Instance") != "chatty" {
		t.Errorf("X-Fake-Instance %q, want the alias chatty passed as --alias", r.Header.Get("X-Fake-Instance"))
	}

	d.expectServedBy(d.chat("chatty"), inst.PID, "chat completion by alias")

	// Streaming: a role chunk, 5 token chunks, the final chunk, [DONE].
	events, hdr := d.streamChat(t, "chat")
	if got := hdr.Get("X-Fake-Pid"); got != fmt.Sprint(inst.PID) {
		t.Errorf("stream answered by X-Fake-Pid %q, want %d", got, inst.PID)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("stream Content-Type %q", ct)
	}
	if len(events) != 5+3 || events[len(events)-1] != "[DONE]" {
		t.Errorf("stream: got %d data events ending %q, want 8 ending [DONE]: %q", len(events), last(events), events)
	}

	r = d.chat("no-such-model")
	if r.Status != http.StatusBadRequest {
		t.Errorf("unknown model: %s, want 400", r)
	}
	var oaErr struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &oaErr); err != nil || oaErr.Error.Message == "" || oaErr.Error.Type == "" {
		t.Errorf("unknown model: body %s is not an OpenAI error (err %v)", r.Body, err)
	}

	r = d.call("GET", "/v1/models", nil)
	d.expect(r, http.StatusOK, "list models")
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	decode(t, r, &models)
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Contains(ids, "chat") {
		t.Errorf("/v1/models does not list chat: %s", r)
	}

	r = d.call("GET", "/api/v1/instances/chat/proxy/health", nil)
	d.expectServedBy(r, inst.PID, "instance passthrough proxy /health")
}

// streamChat posts a streaming chat completion and returns the payloads
// of its "data:" events and the response header.
func (d *daemon) streamChat(t *testing.T, model string) ([]string, http.Header) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": "hello"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", d.URL+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("stream request: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream request: %d %s", resp.StatusCode, b)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			events = append(events, strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read stream: %v (after %d events)", err, len(events))
	}
	return events, resp.Header
}

// 3. POST /api/v1/instances/{name} writes a YAML spec file with what was
// sent and the instance comes up; a second create is 409; DELETE removes
// file and process.
func testAPICreate(d *daemon) {
	t := d.t
	body := map[string]any{
		"model":    "/models/new1.gguf",
		"ctx_size": 2048,
		"env":      d.fd.childEnvMap("new1", nil),
	}
	r := d.call("POST", "/api/v1/instances/new1", body)
	d.expect(r, http.StatusCreated, "create new1")

	var file map[string]any
	if err := yaml.Unmarshal(d.fd.readSpec(t, "new1.yaml"), &file); err != nil {
		t.Fatalf("new1.yaml is not YAML: %v", err)
	}
	for k, v := range body {
		if !sameJSON(file[k], v) {
			t.Errorf("new1.yaml: %s = %v, want %v", k, file[k], v)
		}
	}
	for k, v := range file {
		if _, sent := body[k]; sent {
			continue
		}
		// The writer may spell out the name or the default state.
		if !(k == "name" && v == "new1") && !(k == "state" && v == "running") {
			t.Errorf("new1.yaml has unexpected key %s = %v", k, v)
		}
	}

	inst := d.waitHealthy("new1")
	if argv := readArgv(t, d.fd, "new1"); !hasArgPair(argv, "--ctx-size", "2048") || !hasArgPair(argv, "-m", "/models/new1.gguf") && !hasArgPair(argv, "--model", "/models/new1.gguf") {
		t.Errorf("new1 argv %q lacks the model or --ctx-size 2048", argv)
	}
	if !sameJSON(inst.Options["ctx_size"], 2048) {
		t.Errorf("new1 options.ctx_size = %v, want 2048", inst.Options["ctx_size"])
	}

	r = d.call("POST", "/api/v1/instances/new1", body)
	if r.Status != http.StatusConflict {
		t.Errorf("duplicate create: %s, want 409", r)
	}

	r = d.call("DELETE", "/api/v1/instances/new1", nil, "If-Match", `"0123456789abcdef"`)
	if r.Status != http.StatusPreconditionFailed {
		t.Errorf("DELETE with a stale If-Match: %s, want 412", r)
	}
	r = d.call("DELETE", "/api/v1/instances/new1", nil)
	if r.Status != http.StatusNoContent && r.Status != http.StatusOK {
		t.Fatalf("delete new1: %s, want 204", r)
	}
	if _, err := os.Stat(filepath.Join(d.fd.SpecsDir, "new1.yaml")); !os.IsNotExist(err) {
		t.Errorf("new1.yaml after DELETE: %v, want it gone", err)
	}
	waitGone(t, inst.PID, "deleted instance new1")
	waitFor(t, 5*time.Second, "new1 to be 404", func() (bool, string) {
		_, ok := d.instance("new1")
		return !ok, "still listed"
	})
}

// 4. PUT on an instance whose spec is TOML rewrites the TOML file, the
// instance restarts with the new option, and a stale If-Match is 412.
func testAPIUpdateTOML(d *daemon) {
	t := d.t
	var b strings.Builder
	b.WriteString("# TOML on purpose\nmodel = \"/models/tomlish.gguf\"\nctx_size = 1024\n\n[env]\n")
	for _, kv := range d.fd.childEnv("tomlish", nil) {
		fmt.Fprintf(&b, "%s = %q\n", kv[0], kv[1])
	}
	d.fd.writeSpec(t, "tomlish.toml", b.String())
	old := d.waitHealthy("tomlish")

	r := d.call("GET", "/api/v1/instances/tomlish", nil)
	d.expect(r, http.StatusOK, "get tomlish")
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("GET tomlish: no ETag header")
	}
	body := map[string]any{
		"model":    "/models/tomlish.gguf",
		"ctx_size": 4096,
		"env":      d.fd.childEnvMap("tomlish", nil),
	}
	r = d.call("PUT", "/api/v1/instances/tomlish", body, "If-Match", etag)
	d.expect(r, http.StatusOK, "update tomlish")
	if r.Header.Get("ETag") == "" || r.Header.Get("ETag") == etag {
		t.Errorf("PUT response ETag %q, want a new one (old %q)", r.Header.Get("ETag"), etag)
	}

	var file map[string]any
	if err := toml.Unmarshal(d.fd.readSpec(t, "tomlish.toml"), &file); err != nil {
		t.Fatalf("tomlish.toml after PUT is not TOML: %v", err)
	}
	if !sameJSON(file["ctx_size"], 4096) || file["model"] != "/models/tomlish.gguf" {
		t.Errorf("tomlish.toml after PUT: %v, want ctx_size 4096", file)
	}
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		if _, err := os.Stat(filepath.Join(d.fd.SpecsDir, "tomlish"+ext)); err == nil {
			t.Errorf("PUT created tomlish%s beside the TOML file", ext)
		}
	}

	inst := d.waitInstance("tomlish", "to run the new spec", func(i instance) bool {
		return i.Running && i.PID != old.PID && alive(i.PID)
	})
	waitFor(t, 5*time.Second, "the new child's argv", func() (bool, string) {
		argv := readArgv(t, d.fd, "tomlish")
		return hasArgPair(argv, "--ctx-size", "4096") && d.fd.readPid("tomlish") == inst.PID, fmt.Sprint(argv)
	})
	if alive(old.PID) {
		t.Errorf("old tomlish process %d still alive after the update", old.PID)
	}

	body["ctx_size"] = 512
	r = d.call("PUT", "/api/v1/instances/tomlish", body, "If-Match", etag)
	if r.Status != http.StatusPreconditionFailed {
		t.Errorf("PUT with stale If-Match: %s, want 412", r)
	}
	if err := toml.Unmarshal(d.fd.readSpec(t, "tomlish.toml"), &file); err != nil || !sameJSON(file["ctx_size"], 4096) {
		t.Errorf("stale PUT changed the file: %v (err %v)", file, err)
	}
	if r := d.call("PUT", "/api/v1/instances/nonexistent", body); r.Status != http.StatusNotFound {
		t.Errorf("PUT unknown instance: %s, want 404", r)
	}
}

// 5. stop writes state: stopped and ends the process; start brings it
// back; restart changes no file but replaces the process.
func testStopStart(d *daemon) {
	t := d.t
	d.fd.writeSpec(t, "toggle.yaml", d.fd.specYAML("toggle", nil))
	inst := d.waitHealthy("toggle")

	r := d.call("POST", "/api/v1/instances/toggle/stop", nil)
	d.expect(r, http.StatusOK, "stop toggle")
	if got := specState(t, d.fd, "toggle.yaml"); got != "stopped" {
		t.Errorf("after stop, toggle.yaml state = %q, want stopped", got)
	}
	waitGone(t, inst.PID, "stopped instance toggle")
	d.waitInstance("toggle", "to show stopped", func(i instance) bool { return !i.Running && i.Phase == "stopped" })
	if pids := d.fd.instancePids("toggle"); len(pids) != 0 {
		t.Errorf("stopped instance still has processes %v", pids)
	}

	r = d.call("POST", "/api/v1/instances/toggle/start", nil)
	d.expect(r, http.StatusOK, "start toggle")
	if got := specState(t, d.fd, "toggle.yaml"); got != "running" {
		t.Errorf("after start, toggle.yaml state = %q, want running", got)
	}
	started := d.waitHealthy("toggle")
	if started.PID == inst.PID {
		t.Errorf("start reused pid %d of the stopped process", inst.PID)
	}
	d.expectServedBy(d.chat("toggle"), started.PID, "chat after start")

	before := d.fd.readSpec(t, "toggle.yaml")
	r = d.call("POST", "/api/v1/instances/toggle/restart", nil)
	d.expect(r, http.StatusOK, "restart toggle")
	restarted := d.waitInstance("toggle", "to run a new process", func(i instance) bool {
		return i.Running && i.PID != started.PID && alive(i.PID)
	})
	waitGone(t, started.PID, "restarted instance's old process")
	if after := d.fd.readSpec(t, "toggle.yaml"); !bytes.Equal(before, after) {
		t.Errorf("restart changed toggle.yaml:\n%s\n---\n%s", before, after)
	}
	d.expectServedBy(d.chat("toggle"), restarted.PID, "chat after restart")
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
func readArgv(t *testing.T, fd *fleetDir, name string) []string {
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
func specState(t *testing.T, fd *fleetDir, file string) string {
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
