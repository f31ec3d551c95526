package spec

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"qwen-7b", true},
		{"a", true},
		{"Q.w_e-n.0", true},
		{"_x", true},
		{"0abc", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".hidden", false},
		{"-flag", false},
		{"a b", false},
		{"a/b", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateName(tt.name); (err == nil) != tt.ok {
				t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		stem string
		data string // YAML
		want string // "" for valid; else the whole error text
	}{
		{"ok", "m", "model: /m\n", ""},
		{"hf repo", "m", "hf_repo: org/x\n", ""},
		{"preset", "m", "fim_qwen_7b_default: true\n", ""},
		{"preset false is no source", "m", "fim_qwen_7b_default: false\n", "f:1:1: no model source: set one of model, hf_repo, model_url or a *_default preset (without one llama-server starts as a router)"},
		{"no source", "m", "ctx_size: 1\n", "f:1:1: no model source: set one of model, hf_repo, model_url or a *_default preset (without one llama-server starts as a router)"},
		{"two sources", "m", "model: /m\nctx_size: 1\nhf_repo: a/b\n", "f:3:1: more than one model source (model and hf_repo): keep exactly one"},
		{"port range", "m", "model: /m\nport: 70000\n", "f:2:7: port: 70000 out of range 1-65535"},
		{"port zero", "m", "model: /m\nport: 0\n", "f:2:7: port: 0 out of range 1-65535"},
		{"negative", "m", "model: /m\nmax_restarts: -1\n", "f:2:15: max_restarts: -1 must be at least 0"},
		{"threads -1 ok", "m", "model: /m\nthreads: -1\npredict: -2\n", ""},
		{"name mismatch", "m", "name: other\nmodel: /m\n", `f:1:7: name "other" must equal the file name stem "m"`},
		{"name key bad", "m", "name: .m\nmodel: /m\n", `f:1:7: name ".m" must not start with '.'`},
		{"stem bad", "-m", "model: /m\n", `f:1:1: name "-m" must not start with '-'`},
		{"state", "m", "model: /m\nstate: paused\n", `f:2:8: state "paused" must be "running" or "stopped"`},
		{"removed", "m", "model: /m\nverbose_prompt: true\n", "f:2:1: verbose_prompt: llama-server version 9431 has no --verbose-prompt flag (option removed)"},
		{"layer range", "m", "model: /m\ncontrol_vector_layer_range: \"1\"\n", `f:2:29: control_vector_layer_range: want two values "START END", got "1"`},
		{"nan", "m", "model: /m\ntemperature: .nan\n", "f:2:14: temperature: want a finite number"},
		{"empty model", "m", "model: \"\"\n", "f:1:8: model: is empty"},
		{"extra args port", "m", "model: /m\nextra_args: [--port=9, -v]\n", "f:2:13: extra_args: --port=9 is set by the supervisor; use the host and port keys"},
		{"env name", "m", "model: /m\nenv:\n  \"A=B\": x\n", `f:3:3: env: "A=B" is not a valid variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode([]byte(tt.data), YAML, "f")
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(tt.stem, nil)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestValidateWithFlags(t *testing.T) {
	old := ParseHelp("-m, --model FNAME   model\n--verbose-prompt   print prompt\n")
	old.Version = "b1000"
	s := &Spec{Model: ptr("/m"), VerbosePrompt: ptr(true), Temperature: ptr(0.5)}
	err := s.Validate("x", old)
	if err == nil || err.Error() != "temperature: llama-server version b1000 has no --temp flag (option removed)" {
		t.Fatalf("Validate = %v", err)
	}
	if err := (&Spec{Model: ptr("/m"), VerbosePrompt: ptr(true)}).Validate("x", old); err != nil {
		t.Fatalf("an option the old binary has: %v", err)
	}
}
