package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"llamactl/reconcile"
	"llamactl/runtime"
	"llamactl/spec"
)

func ptr[T any](v T) *T { return &v }

// sample returns the status of a healthy instance with secrets in its spec.
func sample(name string, phase runtime.Phase) reconcile.InstanceStatus {
	return reconcile.InstanceStatus{
		Name:    name,
		Created: time.Unix(1700000000, 0),
		Spec: &spec.Spec{
			Model: ptr("/models/" + name + ".gguf"), Alias: ptr(name + "-alias"),
			APIKey: ptr("sk-instance-secret"), HFToken: ptr("hf-secret-token"),
		},
		File: name + ".yaml", Format: spec.YAML, ETag: "etag-" + name,
		Desired: spec.StateRunning, Sync: "synced",
		Conditions: []reconcile.Condition{{Type: "Ready", Status: "True", LastTransitionTime: time.Unix(1700000001, 0).UTC()}},
		Runtime:    runtime.Status{Name: name, Phase: phase, Port: 18081, PID: 4242},
	}
}

func fleetOf(list ...reconcile.InstanceStatus) *fakeFleet {
	return &fakeFleet{
		ListFn: func() []reconcile.InstanceStatus { return list },
		GetFn: func(name string) (reconcile.InstanceStatus, error) {
			for _, st := range list {
				if st.Name == name {
					return st, nil
				}
			}
			return reconcile.InstanceStatus{}, reconcile.ErrNotFound
		},
	}
}

func TestListAndGet(t *testing.T) {
	f := fleetOf(sample("a", runtime.PhaseRunning), sample("b", runtime.PhaseStarting))
	ts := newTestServer(t, Config{}, f, ServerInfo{})

	resp, body := ts.do(t, "GET", "/api/v1/instances", nil)
	expect(t, resp, body, 200)
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 2 {
		t.Fatalf("list: %v %s", err, body)
	}
	if list[0]["running"] != true || list[1]["running"] != false || list[1]["phase"] != "starting" {
		t.Fatalf("running must be true only when healthy: %s", body)
	}
	if strings.Contains(string(body), "secret") {
		t.Fatalf("secrets echoed: %s", body)
	}

	tests := []struct {
		name, path string
		status     int
		want       []string
	}{
		{"found", "/api/v1/instances/a", 200, []string{`"name":"a"`, `"etag":"etag-a"`, `"source":"a.yaml"`, `"status":"running"`, `"port":18081`, `"options":{`, `"alias":"a-alias"`}},
		{"unknown", "/api/v1/instances/zz", 404, []string{`"code":404`, "not found"}},
		{"bad name", "/api/v1/instances/-bad", 400, []string{"invalid instance name"}},
		{"long name", "/api/v1/instances/" + strings.Repeat("x", 65), 400, []string{"invalid instance name"}},
		{"no route", "/api/v1/nothing", 404, []string{"no route"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(t, "GET", tc.path, nil)
			expect(t, resp, body, tc.status, tc.want...)
			if strings.Contains(string(body), "secret") {
				t.Fatalf("secrets echoed: %s", body)
			}
		})
	}
	resp, _ = ts.do(t, "GET", "/api/v1/instances/a", nil)
	if got := resp.Header.Get("ETag"); got != `"etag-a"` {
		t.Fatalf("ETag = %q", got)
	}
}

func TestWrites(t *testing.T) {
	var got struct {
		name, ifMatch, state string
		format               spec.Format
		spec                 *spec.Spec
	}
	f := fleetOf(sample("a", runtime.PhaseRunning))
	f.CreateFn = func(name string, s *spec.Spec, fm spec.Format) (reconcile.InstanceStatus, error) {
		switch name {
		case "a":
			return reconcile.InstanceStatus{}, reconcile.ErrExists
		case "ro":
			return reconcile.InstanceStatus{}, reconcile.ErrReadOnly
		case "invalid":
			return reconcile.InstanceStatus{}, spec.ErrorList{{File: "request body", Line: 1, Col: 2, Msg: "no model source"}}
		}
		got.name, got.spec, got.format = name, s, fm
		st := sample(name, runtime.PhaseStarting)
		st.Spec = s
		return st, nil
	}
	f.UpdateFn = func(name string, s *spec.Spec, ifMatch string) (reconcile.InstanceStatus, error) {
		got.name, got.spec, got.ifMatch = name, s, ifMatch
		if name != "a" {
			return reconcile.InstanceStatus{}, reconcile.ErrNotFound
		}
		if ifMatch != "" && !reconcile.ETagMatches(ifMatch, "etag-a") {
			return reconcile.InstanceStatus{}, reconcile.ErrPreconditionFailed
		}
		st := sample(name, runtime.PhaseRunning)
		st.ETag = "etag-a2"
		return st, nil
	}
	f.DeleteFn = func(name string, ifMatch string) error {
		got.name, got.ifMatch = name, ifMatch
		switch {
		case name != "a":
			return reconcile.ErrNotFound
		case ifMatch != "" && !reconcile.ETagMatches(ifMatch, "etag-a"):
			return reconcile.ErrPreconditionFailed
		}
		return nil
	}
	ts := newTestServer(t, Config{MaxBodyBytes: 4096}, f, ServerInfo{})
	jsonCT := []string{"Content-Type", "application/json"}
	good := []byte(`{"model": "/models/new.gguf", "ctx_size": 4096, "seed": 12345678901234567}`)

	t.Run("create", func(t *testing.T) {
		resp, body := ts.do(t, "POST", "/api/v1/instances/new?format=toml", good, jsonCT...)
		expect(t, resp, body, 201, `"name":"new"`)
		if got.name != "new" || got.format != spec.TOML || got.spec == nil || got.spec.Model == nil || *got.spec.Model != "/models/new.gguf" {
			t.Fatalf("Create got %+v", got)
		}
		if resp.Header.Get("ETag") != `"etag-new"` || resp.Header.Get("Location") != "/api/v1/instances/new" {
			t.Fatalf("headers %v", resp.Header)
		}
	})
	tests := []struct {
		name, method, path string
		body               []byte
		hdr                []string
		status             int
		want               []string
	}{
		{"create duplicate", "POST", "/api/v1/instances/a", good, jsonCT, 409, []string{"already exists"}},
		{"create read-only", "POST", "/api/v1/instances/ro", good, jsonCT, 409, []string{"read-only"}},
		{"create fleet-invalid", "POST", "/api/v1/instances/invalid", good, jsonCT, 400, []string{"request body:1:2: no model source"}},
		{"create not json", "POST", "/api/v1/instances/x", good, []string{"Content-Type", "text/plain"}, 415, []string{"application/json"}},
		{"create no content type", "POST", "/api/v1/instances/x", good, nil, 415, nil},
		{"create unknown key", "POST", "/api/v1/instances/x", []byte("{\n  \"modle\": \"x\"\n}"), jsonCT, 400, []string{`"details":["request body:2:3`, "modle"}},
		{"create broken json", "POST", "/api/v1/instances/x", []byte(`{"model": `), jsonCT, 400, []string{"request body"}},
		{"create bad format", "POST", "/api/v1/instances/x?format=ini", good, jsonCT, 400, []string{"format"}},
		{"create bad name", "POST", "/api/v1/instances/.x", good, jsonCT, 400, []string{"invalid instance name"}},
		{"create too large", "POST", "/api/v1/instances/x", []byte(`{"model":"` + strings.Repeat("m", 5000) + `"}`), jsonCT, 413, []string{"limit"}},
		{"update", "PUT", "/api/v1/instances/a", good, append([]string{"If-Match", `"etag-a"`}, jsonCT...), 200, []string{`"etag":"etag-a2"`}},
		{"update stale", "PUT", "/api/v1/instances/a", good, append([]string{"If-Match", `"old"`}, jsonCT...), 412, []string{"If-Match"}},
		{"update listed", "PUT", "/api/v1/instances/a", good, append([]string{"If-Match", `"old", "etag-a"`}, jsonCT...), 200, nil},
		{"update listed stale", "PUT", "/api/v1/instances/a", good, append([]string{"If-Match", `"old", "older"`}, jsonCT...), 412, nil},
		{"update weak", "PUT", "/api/v1/instances/a", good, append([]string{"If-Match", `W/"etag-a"`}, jsonCT...), 412, nil},
		{"update unknown", "PUT", "/api/v1/instances/b", good, jsonCT, 404, nil},
		{"update not json", "PUT", "/api/v1/instances/a", good, []string{"Content-Type", "application/yaml"}, 415, nil},
		{"delete stale", "DELETE", "/api/v1/instances/a", nil, []string{"If-Match", `W/"old"`}, 412, nil},
		{"delete unknown", "DELETE", "/api/v1/instances/b", nil, nil, 404, nil},
		{"delete", "DELETE", "/api/v1/instances/a", nil, []string{"If-Match", `"etag-a"`}, 204, nil},
		{"delete any", "DELETE", "/api/v1/instances/a", nil, []string{"If-Match", `*`}, 204, nil},
		{"patch not allowed", "PATCH", "/api/v1/instances/a", nil, nil, 405, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			expect(t, resp, body, tc.status, tc.want...)
		})
	}
	if got.ifMatch != "*" {
		t.Fatalf("If-Match: * must reach the fleet as *, got %q", got.ifMatch)
	}
}

func TestActions(t *testing.T) {
	f := fleetOf(sample("a", runtime.PhaseRunning))
	var calls []string
	f.SetStateFn = func(ctx context.Context, name, state string) (reconcile.InstanceStatus, error) {
		calls = append(calls, name+":"+state)
		if name == "slow" {
			<-ctx.Done()
			return reconcile.InstanceStatus{}, fmt.Errorf("wait for %s: %w", name, ctx.Err())
		}
		if name != "a" {
			return reconcile.InstanceStatus{}, reconcile.ErrNotFound
		}
		st := sample(name, runtime.PhaseStopped)
		st.Desired = state
		return st, nil
	}
	f.RestartFn = func(_ context.Context, name string) (reconcile.InstanceStatus, error) {
		calls = append(calls, name+":restart")
		switch name {
		case "ro":
			return reconcile.InstanceStatus{}, reconcile.ErrReadOnly
		case "off":
			return reconcile.InstanceStatus{}, fmt.Errorf("restart off: %w", runtime.ErrStopped)
		}
		return sample(name, runtime.PhaseStarting), nil
	}
	ts := newTestServer(t, Config{ActionTimeout: 50 * time.Millisecond}, f, ServerInfo{})
	tests := []struct {
		name, method, path string
		status             int
		want               []string
	}{
		{"start", "POST", "/api/v1/instances/a/start", 200, []string{`"status":"running"`}},
		{"stop", "POST", "/api/v1/instances/a/stop", 200, []string{`"status":"stopped"`, `"running":false`}},
		{"restart", "POST", "/api/v1/instances/a/restart", 200, []string{`"phase":"starting"`}},
		{"start unknown", "POST", "/api/v1/instances/zz/start", 404, nil},
		{"restart conflict", "POST", "/api/v1/instances/ro/restart", 409, nil},
		{"restart stopped", "POST", "/api/v1/instances/off/restart", 409, []string{"start it instead", "/api/v1/instances/off/start"}},
		{"start timeout", "POST", "/api/v1/instances/slow/start", 504, []string{"deadline"}},
		{"start by GET", "GET", "/api/v1/instances/a/start", 405, nil},
		{"unknown action", "POST", "/api/v1/instances/a/explode", 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(t, tc.method, tc.path, nil)
			expect(t, resp, body, tc.status, tc.want...)
		})
	}
	want := "a:running a:stopped a:restart zz:running ro:restart off:restart slow:running"
	if got := strings.Join(calls, " "); got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

func TestLogs(t *testing.T) {
	var gotN []int
	f := fleetOf(sample("a", runtime.PhaseRunning))
	f.LogsFn = func(name string, n int) ([]byte, error) {
		if name != "a" {
			return nil, reconcile.ErrNotFound
		}
		gotN = append(gotN, n)
		return []byte("line1\nline2\n"), nil
	}
	ts := newTestServer(t, Config{}, f, ServerInfo{})
	tests := []struct {
		query  string
		status int
		n      int
	}{
		{"", 200, 0}, {"?lines=5", 200, 5}, {"?lines=0", 200, 0}, {"?lines=-3", 200, 0},
		{"?lines=abc", 400, -1}, {"?lines=1.5", 400, -1}, {"?lines=", 400, -1},
		{"?lines=99999999999999999999", 200, 0}, {"?lines=-99999999999999999999", 200, 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			gotN = nil
			resp, body := ts.do(t, "GET", "/api/v1/instances/a/logs"+tc.query, nil)
			expect(t, resp, body, tc.status)
			if tc.status == 200 {
				if len(gotN) != 1 || gotN[0] != tc.n || string(body) != "line1\nline2\n" ||
					!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
					t.Fatalf("n=%v body=%q ct=%q", gotN, body, resp.Header.Get("Content-Type"))
				}
			} else if len(gotN) != 0 {
				t.Fatalf("fleet called on a bad request")
			}
		})
	}
	resp, body := ts.do(t, "GET", "/api/v1/instances/b/logs", nil)
	expect(t, resp, body, 404)
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{reconcile.ErrNotFound, 404}, {reconcile.ErrExists, 409}, {reconcile.ErrReadOnly, 409},
		{reconcile.ErrConflict, 409}, {reconcile.ErrPreconditionFailed, 412},
		{spec.ErrorList{{Msg: "x"}}, 400}, {fmt.Errorf("wrap: %w", runtime.ErrStopped), 503},
		{context.DeadlineExceeded, 504}, {errors.New("disk full"), 500},
	}
	for _, tc := range tests {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	ts := newTestServer(t, Config{RequireManagementAuth: true, ManagementKeys: []string{"k"}}, fleetOf(), ServerInfo{})
	resp, body := ts.do(t, "GET", "/api/v1/openapi.json", nil)
	expect(t, resp, body, http.StatusOK, `"openapi": "3.0.3"`, "/instances/{name}/proxy")
}
