package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/pelletier/go-toml/v2"
)

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
	for _, bad := range []string{"-dash", ".hidden", strings.Repeat("x", 65)} {
		if r := d.call("POST", "/api/v1/instances/"+bad, body); r.Status != http.StatusBadRequest {
			t.Errorf("create %q (invalid name): %s, want 400", bad, r)
		}
	}
	if r := d.call("POST", "/api/v1/instances/badbody", `{"model": "/models/x.gguf", "ctx_size": "big"}`); r.Status != http.StatusBadRequest {
		t.Errorf("create with a wrongly typed option: %s, want 400", r)
	}
	if _, err := os.Stat(filepath.Join(d.fd.SpecsDir, "badbody.yaml")); err == nil {
		t.Errorf("a rejected create wrote badbody.yaml")
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

// An instance read through the API shows no secrets; writing it back with
// a changed field keeps them in the file (an empty string removes one).
// If-Match takes a list of entity tags, and a weak one never matches.
func testAPIUpdateSecrets(d *daemon) {
	t := d.t
	body := map[string]any{"model": "/models/sec.gguf", "ctx_size": 1024, "api_key": "sk-sec-1", "hf_token": "hf-sec-1",
		"state": "stopped"}
	d.expect(d.call("POST", "/api/v1/instances/sec", body), http.StatusCreated, "create sec")
	r := d.call("GET", "/api/v1/instances/sec", nil)
	if bytes.Contains(r.Body, []byte("sk-sec-1")) || bytes.Contains(r.Body, []byte("hf-sec-1")) {
		t.Fatalf("GET shows a secret: %s", r)
	}
	var inst struct {
		Options map[string]any `json:"options"`
		ETag    string         `json:"etag"`
	}
	if err := json.Unmarshal(r.Body, &inst); err != nil {
		t.Fatal(err)
	}
	opts := inst.Options
	opts["ctx_size"] = 2048
	d.expect(d.call("PUT", "/api/v1/instances/sec", opts, "If-Match", `"stale", "`+inst.ETag+`"`), http.StatusOK, "PUT of what GET showed")
	file := string(d.fd.readSpec(t, "sec.yaml"))
	if !strings.Contains(file, "sk-sec-1") || !strings.Contains(file, "hf-sec-1") || !strings.Contains(file, "2048") {
		t.Fatalf("sec.yaml after a read-modify-write:\n%s", file)
	}
	r = d.call("GET", "/api/v1/instances/sec", nil)
	if err := json.Unmarshal(r.Body, &inst); err != nil {
		t.Fatal(err)
	}
	if r := d.call("PUT", "/api/v1/instances/sec", opts, "If-Match", "W/\""+inst.ETag+"\""); r.Status != http.StatusPreconditionFailed {
		t.Errorf("PUT with a weak If-Match: %s, want 412", r)
	}
	opts["api_key_file"] = "/etc/llama/keys"
	d.expect(d.call("PUT", "/api/v1/instances/sec", opts), http.StatusOK, "PUT moving the key to a file")
	file = string(d.fd.readSpec(t, "sec.yaml"))
	if strings.Contains(file, "sk-sec-1") || !strings.Contains(file, "api_key_file") || !strings.Contains(file, "hf-sec-1") {
		t.Fatalf("sec.yaml after api_key_file:\n%s", file)
	}
	delete(opts, "api_key_file")
	opts["api_key"] = "sk-sec-2"
	d.expect(d.call("PUT", "/api/v1/instances/sec", opts), http.StatusOK, "PUT with a new key")
	opts["api_key"] = ""
	d.expect(d.call("PUT", "/api/v1/instances/sec", opts), http.StatusOK, "PUT removing the key")
	file = string(d.fd.readSpec(t, "sec.yaml"))
	if strings.Contains(file, "sk-sec-2") || strings.Contains(file, "api_key") || !strings.Contains(file, "hf-sec-1") {
		t.Fatalf("sec.yaml after api_key \"\":\n%s", file)
	}
	d.expect(d.call("DELETE", "/api/v1/instances/sec", nil), http.StatusNoContent, "delete sec")
}
