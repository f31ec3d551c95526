package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// instance is the part of the API's Instance object the tests look at.
type instance struct {
	Name      string         `json:"name"`
	Running   bool           `json:"running"`
	Phase     string         `json:"phase"`
	Port      int            `json:"port"`
	PID       int            `json:"pid"`
	Restarts  int            `json:"restarts"`
	LastError string         `json:"last_error"`
	Error     string         `json:"error"`
	ETag      string         `json:"etag"`
	Source    any            `json:"source"`
	Options   map[string]any `json:"options"`
}

func (i instance) String() string {
	return fmt.Sprintf("{name=%s running=%v phase=%s pid=%d port=%d restarts=%d error=%q last_error=%q}",
		i.Name, i.Running, i.Phase, i.PID, i.Port, i.Restarts, i.Error, i.LastError)
}

// response is a buffered HTTP response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// call sends a request to the daemon. body is JSON-encoded unless it is a
// string or []byte; hdr holds extra headers ("Key", "Value" pairs). A
// transport error fails the test.
func (d *daemon) call(method, path string, body any, hdr ...string) response {
	d.t.Helper()
	r, err := d.try(method, path, body, hdr...)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// try is call that returns transport errors instead of failing.
func (d *daemon) try(method, path string, body any, hdr ...string) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return response{}, fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(enc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read response: %w", err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// expect fails the test unless r has status want.
func (d *daemon) expect(r response, want int, what string) {
	d.t.Helper()
	if r.Status != want {
		d.t.Fatalf("%s: got %s, want status %d", what, r, want)
	}
}

// decode unmarshals r's body into v or fails the test.
func decode(t testing.TB, r response, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode response %s: %v", r, err)
	}
}

// instance GETs one instance; ok is false on 404.
func (d *daemon) instance(name string) (inst instance, ok bool) {
	d.t.Helper()
	r := d.call("GET", "/api/v1/instances/"+name, nil)
	if r.Status == http.StatusNotFound {
		return instance{}, false
	}
	d.expect(r, http.StatusOK, "get instance "+name)
	decode(d.t, r, &inst)
	return inst, true
}

// waitFor polls cond every 25ms until it returns true or timeout passes;
// then it fails the test with what and cond's last detail.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, detail)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// healthyTimeout bounds how long an instance may take to become healthy.
const healthyTimeout = 20 * time.Second

// waitInstance polls instance name until cond holds and returns it.
func (d *daemon) waitInstance(name, what string, cond func(instance) bool) instance {
	d.t.Helper()
	var last instance
	waitFor(d.t, healthyTimeout, name+" "+what, func() (bool, string) {
		inst, ok := d.instance(name)
		if !ok {
			return false, "404 not found"
		}
		last = inst
		return cond(inst), inst.String()
	})
	return last
}

// waitHealthy waits until instance name is running (healthy) with a pid
// whose process is alive, and returns it.
func (d *daemon) waitHealthy(name string) instance {
	d.t.Helper()
	return d.waitInstance(name, "to be healthy", func(i instance) bool {
		return i.Running && i.PID > 0 && alive(i.PID)
	})
}

// waitGone waits until pid is no longer a live process.
func waitGone(t testing.TB, pid int, what string) {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("%s (pid %d) to exit", what, pid), func() (bool, string) {
		return !alive(pid), "still alive"
	})
}

// chat sends a non-streaming chat completion for model.
func (d *daemon) chat(model string) response {
	d.t.Helper()
	return d.call("POST", "/v1/chat/completions", map[string]any{
		"model":    model,
		"messages": []map[string]string{{"role": "user", "content": "hello"}},
	})
}

// expectServedBy fails unless r is a 200 completion answered by pid.
func (d *daemon) expectServedBy(r response, pid int, what string) {
	d.t.Helper()
	d.expect(r, http.StatusOK, what)
	if got := r.Header.Get("X-Fake-Pid"); got != fmt.Sprint(pid) {
		d.t.Fatalf("%s: answered by X-Fake-Pid %q, want %d (headers %v)", what, got, pid, r.Header)
	}
}

// daemonStatus is GET /api/v1/status: the specs directory as a whole.
type daemonStatus struct {
	SpecsDir string `json:"specs_dir"`
	Revision string `json:"revision"`
	ReadOnly bool   `json:"readonly"`
	Error    string `json:"error"`
}

// status GETs the daemon status.
func (d *daemon) status() daemonStatus {
	d.t.Helper()
	r := d.call("GET", "/api/v1/status", nil)
	d.expect(r, http.StatusOK, "daemon status")
	var st daemonStatus
	decode(d.t, r, &st)
	return st
}
