package spec

import "testing"

func mustDecode(t *testing.T, data string, f Format) *Spec {
	t.Helper()
	s, err := Decode([]byte(data), f, "x")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHash(t *testing.T) {
	base := mustDecode(t, "model: /m\nctx_size: 4096\nenv:\n  A: \"1\"\n  B: \"2\"\n", YAML).Hash("/bin/llama-server", nil)
	same := []struct{ name, data string }{
		{"reordered keys and env", "# a comment\nenv:\n  B: \"2\"\n  A: \"1\"\nctx_size: 4096\nmodel: /m\n"},
		{"supervision fields", "model: /m\nctx_size: 4096\nstate: stopped\nidle_timeout: 60\non_demand_start: true\nauto_restart: false\nmax_restarts: 3\nrestart_delay_seconds: 2\nstop_timeout: 5\nstartup_timeout: 9\nname: x\nenv:\n  A: \"1\"\n  B: \"2\"\n"},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustDecode(t, tt.data, YAML).Hash("/bin/llama-server", nil); got != base {
				t.Error("hash changed")
			}
		})
	}
	if got := mustDecode(t, `{"model": "/m", "ctx_size": 4096, "env": {"B": "2", "A": "1"}}`, JSON).Hash("/bin/llama-server", nil); got != base {
		t.Error("hash of the same spec in JSON differs")
	}
	differ := []struct{ name, data, bin string }{
		{"binary", "model: /m\nctx_size: 4096\nenv:\n  A: \"1\"\n  B: \"2\"\n", "/other"},
		{"argv", "model: /m\nctx_size: 4097\nenv:\n  A: \"1\"\n  B: \"2\"\n", ""},
		{"env", "model: /m\nctx_size: 4096\nenv:\n  A: \"1\"\n  B: \"3\"\n", ""},
		{"host", "model: /m\nctx_size: 4096\nhost: 0.0.0.0\nenv:\n  A: \"1\"\n  B: \"2\"\n", ""},
		{"port", "model: /m\nctx_size: 4096\nport: 8080\nenv:\n  A: \"1\"\n  B: \"2\"\n", ""},
		{"extra args", "model: /m\nctx_size: 4096\nextra_args: [-v]\nenv:\n  A: \"1\"\n  B: \"2\"\n", ""},
	}
	for _, tt := range differ {
		t.Run(tt.name, func(t *testing.T) {
			bin := tt.bin
			if bin == "" {
				bin = "/bin/llama-server"
			}
			if got := mustDecode(t, tt.data, YAML).Hash(bin, nil); got == base {
				t.Error("hash did not change")
			}
		})
	}
	if len(base) != 64 {
		t.Errorf("hash %q is not sha256 hex", base)
	}
}

func TestCloneRedacted(t *testing.T) {
	s := mustDecode(t, "model: /m\napi_key: k\nhf_token: t\nlora: [a]\nenv:\n  A: \"1\"\nctx_size: 3\n", YAML)
	c := s.Clone()
	if !Equal(c, s) {
		t.Fatal("clone differs")
	}
	*c.CtxSize = 4
	c.Lora[0] = "b"
	c.Env["A"] = "2"
	if *s.CtxSize != 3 || s.Lora[0] != "a" || s.Env["A"] != "1" {
		t.Fatal("clone shares memory with the original")
	}
	r := s.Redacted()
	if r.APIKey != nil || r.HFToken != nil || s.APIKey == nil || *r.Model != "/m" {
		t.Fatalf("Redacted = %+v", r)
	}
	if (*Spec)(nil).Clone() != nil {
		t.Fatal("nil clone")
	}
}
