package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAccessControl runs a daemon with API keys and --readonly: requests
// without the right key are 401, management keys do not double as
// inference-only keys the other way round, and writes are 409 while reads
// and the proxy work.
func TestAccessControl(t *testing.T) {
	t.Parallel()
	const mkey, ikey = "mgmt-key-0123456789", "infer-key-0123456789"
	fd := newFleetDir(t)
	fd.writeSpec(t, "guarded.yaml", fd.specYAML("guarded", nil))
	d := startDaemon(t, fd, daemonOpts{
		Env: map[string]string{
			"LLAMACTL_AUTH_MANAGEMENT_KEYS":        mkey,
			"LLAMACTL_AUTH_INFERENCE_KEYS":         ikey,
			"LLAMACTL_AUTH_REQUIRE_INFERENCE_AUTH": "true",
			"LLAMACTL_LIMITS_MAX_BODY_BYTES":       "4096",
		},
		Args: []string{"--readonly"},
	})
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }

	// Management API.
	for _, c := range []struct {
		name string
		hdr  []string
		ok   bool
	}{
		{"no key", nil, false},
		{"wrong key", bearer("nope"), false},
		{"inference key", bearer(ikey), false},
		{"management key", bearer(mkey), true},
		{"management key as X-API-Key", []string{"X-API-Key", mkey}, true},
	} {
		r := d.call("GET", "/api/v1/instances", nil, c.hdr...)
		switch {
		case c.ok && r.Status != http.StatusOK:
			t.Errorf("management API with %s: %s, want 200", c.name, r)
		case !c.ok && r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden:
			t.Errorf("management API with %s: %s, want 401", c.name, r)
		case c.name == "no key" && r.Status != http.StatusUnauthorized:
			t.Errorf("management API without a key: %s, want 401", r)
		}
	}

	var inst instance
	waitFor(t, healthyTimeout, "guarded to be healthy", func() (bool, string) {
		r := d.call("GET", "/api/v1/instances/guarded", nil, bearer(mkey)...)
		if r.Status != http.StatusOK {
			return false, r.String()
		}
		inst = instance{}
		_ = json.Unmarshal(r.Body, &inst)
		return inst.Running && alive(inst.PID), inst.String()
	})

	// OpenAI proxy.
	chatBody := map[string]any{"model": "guarded", "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	r := d.call("POST", "/v1/chat/completions", chatBody)
	var oaErr struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if r.Status != http.StatusUnauthorized || json.Unmarshal(r.Body, &oaErr) != nil || oaErr.Error.Message == "" {
		t.Errorf("proxy without a key: %s, want 401 with an OpenAI-shaped error", r)
	}
	served := d.call("POST", "/v1/chat/completions", chatBody, bearer(ikey)...)
	d.expectServedBy(served, inst.PID, "proxy with the inference key")
	// Its access line: every field, the id the client got, no key.
	id := served.Header.Get("X-Request-Id")
	var line map[string]any
	waitFor(t, 5*time.Second, "the access line of "+id, func() (bool, string) {
		for _, rec := range d.log.records("proxy") {
			if rec["request_id"] == id {
				line = rec
				return true, ""
			}
		}
		return false, "not logged"
	})
	for k, want := range map[string]any{"level": "info", "method": "POST", "path": "/v1/chat/completions",
		"instance": "guarded", "model": "guarded", "status": float64(200)} {
		if line[k] != want {
			t.Errorf("access line %v: %s = %v, want %v", line, k, line[k], want)
		}
	}
	if ms, ok := line["duration"].(float64); !ok || ms < 0 {
		t.Errorf("access line %v: duration", line)
	}
	if n, ok := line["bytes"].(float64); !ok || n <= 0 {
		t.Errorf("access line %v: bytes", line)
	}
	if ts, ok := line["time"].(string); !ok || ts == "" {
		t.Errorf("access line %v: time", line)
	}
	if out := d.log.String(); strings.Contains(out, ikey) || strings.Contains(out, mkey) {
		t.Errorf("a key was logged")
	}
	d.expectServedBy(d.call("POST", "/v1/chat/completions", chatBody, bearer(mkey)...), inst.PID, "proxy with the management key")
	if r := d.call("GET", "/v1/models", nil, bearer("nope")...); r.Status != http.StatusUnauthorized {
		t.Errorf("/v1/models with a wrong key: %s, want 401", r)
	}
	big := map[string]any{"model": "guarded", "messages": []map[string]string{{"role": "user", "content": strings.Repeat("x", 8192)}}}
	if r := d.call("POST", "/v1/chat/completions", big, bearer(ikey)...); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("body over limits.max_body_bytes: %s, want 413", r)
	}

	// Read-only: writes are refused and change no file.
	r = d.call("POST", "/api/v1/instances/newbie", map[string]any{"model": "/models/newbie.gguf"}, bearer(mkey)...)
	if r.Status != http.StatusConflict {
		t.Errorf("create on read-only specs: %s, want 409", r)
	}
	if _, err := os.Stat(filepath.Join(fd.SpecsDir, "newbie.yaml")); err == nil {
		t.Errorf("read-only create wrote newbie.yaml")
	}
	before := fd.readSpec(t, "guarded.yaml")
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v1/instances/guarded/stop"},
		{"DELETE", "/api/v1/instances/guarded"},
		{"PUT", "/api/v1/instances/guarded"},
	} {
		var body any
		if c.method == "PUT" {
			body = map[string]any{"model": "/models/other.gguf"}
		}
		if r := d.call(c.method, c.path, body, bearer(mkey)...); r.Status != http.StatusConflict {
			t.Errorf("%s %s on read-only specs: %s, want 409", c.method, c.path, r)
		}
	}
	if after := fd.readSpec(t, "guarded.yaml"); string(after) != string(before) {
		t.Errorf("read-only writes changed guarded.yaml")
	}
	if !alive(inst.PID) {
		t.Errorf("refused writes stopped the instance")
	}
}
