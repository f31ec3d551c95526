package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"llamactl/internal/syncbuf"
	"llamactl/reconcile"
	"llamactl/runtime"
)

func TestAuth(t *testing.T) {
	echo, _ := echoUpstream(t)
	r := &routes{addrs: map[string]string{"echo": echo}}
	cfg := Config{
		RequireManagementAuth: true, RequireInferenceAuth: true,
		ManagementKeys: []string{"mgmt-key-1", "mgmt-key-2"}, InferenceKeys: []string{"infer-key"},
	}
	ts := newTestServer(t, cfg, proxyFleet(r), ServerInfo{})
	chat := []byte(`{"model":"echo"}`)
	tests := []struct {
		name, method, path string
		body               []byte
		hdr                []string
		status             int
	}{
		{"mgmt no key", "GET", "/api/v1/instances", nil, nil, 401},
		{"mgmt wrong key", "GET", "/api/v1/instances", nil, []string{"Authorization", "Bearer nope"}, 401},
		{"mgmt prefix of key", "GET", "/api/v1/instances", nil, []string{"Authorization", "Bearer mgmt-key"}, 401},
		{"mgmt inference key", "GET", "/api/v1/instances", nil, []string{"Authorization", "Bearer infer-key"}, 401},
		{"mgmt bearer", "GET", "/api/v1/instances", nil, []string{"Authorization", "Bearer mgmt-key-1"}, 200},
		{"mgmt bearer lowercase scheme", "GET", "/api/v1/instances", nil, []string{"Authorization", "bearer mgmt-key-2"}, 200},
		{"mgmt x-api-key", "GET", "/api/v1/instances", nil, []string{"X-API-Key", "mgmt-key-2"}, 200},
		{"mgmt basic is not bearer", "GET", "/api/v1/instances", nil, []string{"Authorization", "Basic mgmt-key-1"}, 401},
		{"openapi open", "GET", "/api/v1/openapi.json", nil, nil, 200},
		{"server cmd guarded", "GET", "/api/v1/server/version", nil, nil, 401},
		{"models no key", "GET", "/v1/models", nil, nil, 401},
		{"models inference key", "GET", "/v1/models", nil, []string{"Authorization", "Bearer infer-key"}, 200},
		{"models management key", "GET", "/v1/models", nil, []string{"X-API-Key", "mgmt-key-1"}, 200},
		{"chat no key", "POST", "/v1/chat/completions", chat, []string{"Content-Type", "application/json"}, 401},
		{"chat key", "POST", "/v1/chat/completions", chat, []string{"Content-Type", "application/json", "Authorization", "Bearer infer-key"}, 200},
		{"seed path chat key", "POST", "/api/v1/v1/chat/completions", chat, []string{"Content-Type", "application/json", "Authorization", "Bearer infer-key"}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			expect(t, resp, body, tc.status)
			if tc.status == 401 {
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
				if strings.HasPrefix(tc.path, "/v1/") && !bytes.Contains(body, []byte(`"type":"authentication_error"`)) {
					t.Fatalf("/v1 401 not in OpenAI shape: %s", body)
				}
			}
		})
	}
}

func TestAuthOffWhenNotRequired(t *testing.T) {
	ts := newTestServer(t, Config{ManagementKeys: []string{"k"}, InferenceKeys: []string{"i"}}, fleetOf(), ServerInfo{})
	resp, body := ts.do(t, "GET", "/api/v1/instances", nil)
	expect(t, resp, body, 200)
	resp, body = ts.do(t, "GET", "/v1/models", nil)
	expect(t, resp, body, 200)
}

func TestKeySet(t *testing.T) {
	ks := newKeySet([]string{"alpha", ""}, []string{"beta"})
	for key, want := range map[string]bool{"alpha": true, "beta": true, "": false, "alph": false, "alphaa": false, "gamma": false} {
		if got := ks.match([]byte(key)); got != want {
			t.Errorf("match(%q) = %v, want %v", key, got, want)
		}
	}
	if len(ks.digests) != 2 {
		t.Fatalf("empty key kept: %d digests", len(ks.digests))
	}
}

func TestCheckBind(t *testing.T) {
	withKeys := Config{RequireManagementAuth: true, RequireInferenceAuth: true, ManagementKeys: []string{"k"}}
	noKeys := Config{RequireManagementAuth: true, RequireInferenceAuth: true}
	tests := []struct {
		addr    string
		cfg     Config
		wantErr string
	}{
		{"127.0.0.1:8080", noKeys, ""},
		{"localhost:8080", noKeys, ""},
		{"[::1]:8080", noKeys, ""},
		{"0.0.0.0:8080", withKeys, ""},
		{"0.0.0.0:8080", Config{}, ""},
		{"0.0.0.0:8080", noKeys, "LLAMACTL_AUTH_MANAGEMENT_KEYS"},
		{":8080", noKeys, "auth.management_keys"},
		{"10.1.2.3:8080", Config{RequireInferenceAuth: true}, "LLAMACTL_AUTH_INFERENCE_KEYS"},
		{"10.1.2.3:8080", Config{RequireInferenceAuth: true, InferenceKeys: []string{"i"}}, ""},
		{"nonsense", noKeys, "check listen address"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckBind(tc.addr, tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	echo, last := echoUpstream(t)
	r := &routes{addrs: map[string]string{"echo": echo}}
	ts := newTestServer(t, Config{}, proxyFleet(r), ServerInfo{})

	resp, body := ts.do(t, "GET", "/api/v1/instances", nil, "X-Request-Id", "abc-123.x:y_z")
	expect(t, resp, body, 200)
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123.x:y_z" {
		t.Fatalf("sane incoming id not kept: %q", got)
	}
	seenIDs := map[string]bool{}
	for _, in := range []string{"", "bad id with spaces", strings.Repeat("x", 200), "<script>"} {
		resp, body := ts.do(t, "GET", "/api/v1/instances", nil, "X-Request-Id", in)
		expect(t, resp, body, 200)
		got := resp.Header.Get("X-Request-Id")
		if got == in || !saneRequestID([]byte(got)) || seenIDs[got] {
			t.Fatalf("incoming %q: id %q", in, got)
		}
		seenIDs[got] = true
	}
	resp, body = ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"echo"}`), "Content-Type", "application/json", "X-Request-Id", "trace-1")
	expect(t, resp, body, 200)
	if last().RequestID != "trace-1" {
		t.Fatalf("request id not forwarded: %+v", last())
	}
	// Errors from fasthttp's own request parsing carry one too. The body
	// is announced, not sent: the server refuses it by its length.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/instances/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 17<<20)
	raw, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw.Body.Close()
	if raw.StatusCode != 413 || raw.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d, X-Request-Id %q", raw.StatusCode, raw.Header.Get("X-Request-Id"))
	}
}

func TestCORS(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		ts := newTestServer(t, Config{}, fleetOf(), ServerInfo{})
		resp, body := ts.do(t, "GET", "/api/v1/instances", nil, "Origin", "https://ui.example")
		expect(t, resp, body, 200)
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("CORS header without an allow-list: %q", v)
		}
	})
	ts := newTestServer(t, Config{CORSAllowOrigins: []string{"https://ui.example"}, RequireManagementAuth: true, ManagementKeys: []string{"k"}}, fleetOf(), ServerInfo{})
	t.Run("allowed", func(t *testing.T) {
		resp, body := ts.do(t, "GET", "/api/v1/instances", nil, "Origin", "https://ui.example", "X-API-Key", "k")
		expect(t, resp, body, 200)
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
			t.Fatalf("headers %v", resp.Header)
		}
	})
	t.Run("preflight without key", func(t *testing.T) {
		resp, body := ts.do(t, "OPTIONS", "/api/v1/instances/a", nil, "Origin", "https://ui.example", "Access-Control-Request-Method", "PUT")
		expect(t, resp, body, 204)
		if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "If-Match") {
			t.Fatalf("headers %v", resp.Header)
		}
	})
	t.Run("other origin", func(t *testing.T) {
		resp, body := ts.do(t, "GET", "/api/v1/instances", nil, "Origin", "https://evil.example", "X-API-Key", "k")
		expect(t, resp, body, 200)
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("CORS header for another origin: %q", v)
		}
		resp, body = ts.do(t, "OPTIONS", "/api/v1/instances", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
		expect(t, resp, body, 403)
	})
}

func TestHeaderAndBodyLimits(t *testing.T) {
	ts := newTestServer(t, Config{MaxHeaderBytes: 4096, MaxBodyBytes: 1024}, fleetOf(), ServerInfo{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/instances HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 8192))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	r2, body := ts.do(t, "PUT", "/api/v1/instances/a", bytes.Repeat([]byte(" "), 2048), "Content-Type", "application/json")
	expect(t, r2, body, 413, `"code":413`)
	// On the OpenAI surface the same errors take OpenAI's shape.
	for _, path := range []string{"/v1/chat/completions", "/api/v1/v1/embeddings"} {
		r3, body := ts.do(t, "POST", path, bytes.Repeat([]byte(" "), 2048), "Content-Type", "application/json")
		expect(t, r3, body, 413, `"type":"invalid_request_error"`, `"code":"request_too_large"`)
	}
	for _, path := range []string{"/v1", "/api/v1/v1"} {
		r4, body := ts.do(t, "GET", path, nil)
		expect(t, r4, body, 404, `"type":"invalid_request_error"`, `"code":"not_found"`)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = syncbuf.Buffer

// TestAccessLog checks the access lines, written through the logger and
// by hand (Config.AccessLog): the same fields either way, no key.
func TestAccessLog(t *testing.T) {
	keysOf := map[bool][]string{}
	for _, hand := range []bool{false, true} {
		t.Run(fmt.Sprintf("by hand=%v", hand), func(t *testing.T) {
			echo, _ := echoUpstream(t)
			r := &routes{addrs: map[string]string{"echo": echo}}
			var buf syncBuffer
			log := zerolog.New(&buf).Level(zerolog.InfoLevel).With().Timestamp().Logger()
			cfg := Config{Logger: &log, RequireInferenceAuth: true, InferenceKeys: []string{"very-secret-key"}}
			if hand {
				cfg.AccessLog = &buf
			}
			ts := newTestServer(t, cfg, proxyFleet(r), ServerInfo{})
			resp, body := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"echo"}`),
				"Content-Type", "application/json", "Authorization", "Bearer very-secret-key", "X-Request-Id", "log-me")
			expect(t, resp, body, 200)
			resp, body = ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"stopped"}`),
				"Content-Type", "application/json", "X-API-Key", "very-secret-key")
			expect(t, resp, body, 503)
			resp, body = ts.do(t, "POST", "/api/v1/v1/completions", []byte(`{"model":"echo"}`),
				"Content-Type", "application/json", "X-API-Key", "very-secret-key")
			expect(t, resp, body, 200)
			// Rejected requests get their line too, with the error body's size.
			resp, body = ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":`),
				"Content-Type", "application/json", "X-API-Key", "very-secret-key", "X-Request-Id", "bad-body")
			expect(t, resp, body, 400)
			waitFor(t, "access log", func() bool { return strings.Count(buf.String(), "\n") >= 4 })
			if l := lineWith(buf.String(), `"request_id":"bad-body"`); !strings.Contains(l, `"status":400`) ||
				!strings.Contains(l, fmt.Sprintf(`"bytes":%d`, len(body))) {
				t.Errorf("rejected request's line: %q", l)
			}
			out := buf.String()
			for _, want := range []string{`"request_id":"log-me"`, `"method":"POST"`, `"path":"/v1/chat/completions"`,
				`"path":"/api/v1/v1/completions"`,
				`"instance":"echo"`, `"model":"echo"`, `"status":200`, `"bytes":`, `"duration":`, `"message":"proxy"`, `"model":"stopped"`, `"status":503`} {
				if !strings.Contains(out, want) {
					t.Errorf("access log lacks %s:\n%s", want, out)
				}
			}
			if strings.Contains(out, "very-secret-key") {
				t.Fatalf("a key was logged:\n%s", out)
			}
			first, _, _ := strings.Cut(out, "\n")
			var line map[string]any
			if err := json.Unmarshal([]byte(first), &line); err != nil {
				t.Fatalf("line %q: %v", first, err)
			}
			if d, ok := line["duration"].(float64); !ok || d < 0 || d > 60_000 {
				t.Errorf("duration %v in %s", line["duration"], first)
			}
			if ts, ok := line["time"].(string); !ok || !timeNear(ts) {
				t.Errorf("time %v in %s", line["time"], first)
			}
			keysOf[hand] = slices.Sorted(maps.Keys(line))
		})
	}
	if !slices.Equal(keysOf[false], keysOf[true]) {
		t.Fatalf("fields differ: logger %v, by hand %v", keysOf[false], keysOf[true])
	}

	// Above info, the hand-written lines are not written either.
	echo, _ := echoUpstream(t)
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.WarnLevel)
	ts := newTestServer(t, Config{Logger: &log, AccessLog: &buf}, proxyFleet(&routes{addrs: map[string]string{"echo": echo}}), ServerInfo{})
	resp, body := ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"echo"}`), "Content-Type", "application/json")
	expect(t, resp, body, 200)
	resp, body = ts.do(t, "POST", "/v1/chat/completions", []byte(`{"model":"stopped"}`), "Content-Type", "application/json")
	expect(t, resp, body, 503)
	waitFor(t, "warning", func() bool { return strings.Contains(buf.String(), `"status":503`) })
	if out := buf.String(); strings.Contains(out, `"status":200`) {
		t.Fatalf("info line written at warn level:\n%s", out)
	}
}

// lineWith returns the first line of out that holds s.
func lineWith(out, s string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// timeNear reports whether s is an RFC 3339 time within a minute of now.
func timeNear(s string) bool {
	ts, err := time.Parse(time.RFC3339, s)
	return err == nil && time.Since(ts).Abs() < time.Minute
}

func TestServerCommands(t *testing.T) {
	if fakellamaBin == "" {
		t.Fatalf("fakellama is not available: %v", fakellamaErr)
	}
	ts := newTestServer(t, Config{}, fleetOf(), ServerInfo{Binary: fakellamaBin})
	tests := []struct{ path, want string }{
		{"/api/v1/server/version", "version: 9431"},
		{"/api/v1/server/help", "--ctx-size"},
		{"/api/v1/server/devices", "Available devices"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := ts.do(t, "GET", tc.path, nil)
			expect(t, resp, body, 200, tc.want)
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	resp, body := ts.do(t, "POST", "/api/v1/server/version", nil)
	expect(t, resp, body, 405)

	dir := t.TempDir()
	slow := filepath.Join(dir, "slow-server")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 10\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	failing := filepath.Join(dir, "failing-server")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'bad flag' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		info ServerInfo
		want string
	}{
		{"timeout", ServerInfo{Binary: slow, CommandTimeout: 100 * time.Millisecond}, "timed out"},
		{"exit status", ServerInfo{Binary: failing}, "bad flag"},
		{"missing", ServerInfo{Binary: filepath.Join(dir, "absent")}, "no such file"},
		{"unset", ServerInfo{}, "no llama-server binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Config{}, fleetOf(), tc.info)
			start := time.Now()
			resp, body := ts.do(t, "GET", "/api/v1/server/version", nil)
			expect(t, resp, body, 500, tc.want)
			if time.Since(start) > 3*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

func TestInstanceJSONRunningOnlyWhenHealthy(t *testing.T) {
	for _, ph := range []runtime.Phase{runtime.PhaseStarting, runtime.PhaseRunning, runtime.PhaseSleeping, runtime.PhaseFailed, ""} {
		st := sample("a", ph)
		in := toInstance(&st)
		if in.Running != (ph == runtime.PhaseRunning) {
			t.Errorf("phase %q: running = %v", ph, in.Running)
		}
		if in.Options == nil || in.Options.APIKey != nil || in.Options.HFToken != nil {
			t.Errorf("options not redacted: %+v", in.Options)
		}
	}
}

func TestInstanceKeyCached(t *testing.T) {
	gets := 0
	f := fleetOf(sample("a", runtime.PhaseRunning))
	base := f.GetFn
	f.GetFn = func(name string) (reconcile.InstanceStatus, error) {
		gets++
		return base(name)
	}
	s := New(Config{}, f, ServerInfo{})
	for range 3 {
		if k := s.instanceKey("a"); k != "sk-instance-secret" {
			t.Fatalf("key %q", k)
		}
	}
	if k := s.instanceKey("missing"); k != "" {
		t.Fatalf("key of a missing instance: %q", k)
	}
	if gets != 2 {
		t.Fatalf("%d lookups, want 2 (one per name)", gets)
	}
}
