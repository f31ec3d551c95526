package spec

import (
	"errors"
	"strings"
	"testing"
)

func TestFormatOf(t *testing.T) {
	tests := map[string]Format{"a.yaml": YAML, "b.YML": YAML, "c.toml": TOML, "d.json": JSON, "e.txt": "", "f": "", ".yaml.swp": ""}
	for path, want := range tests {
		got, ok := FormatOf(path)
		if got != want || ok != (want != "") {
			t.Errorf("FormatOf(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		data string
		want string // the whole error text
	}{
		{"yaml typo", YAML, "model: /m.gguf\ntemprature: 0.7\n", `f:2:1: unknown key "temprature"; did you mean "temperature"?`},
		{"toml typo", TOML, "model = \"/m\"\n  temprature = 0.7\n", `f:2:3: unknown key "temprature"; did you mean "temperature"?`},
		{"json typo", JSON, "{\n  \"model\": \"/m\",\n  \"temprature\": 0.7\n}", `f:3:3: unknown key "temprature"; did you mean "temperature"?`},
		{"flag name as key", YAML, "model: /m\nn_gpu_layers: 3\n", `f:2:1: unknown key "n_gpu_layers"; did you mean "gpu_layers"?`},
		{"dashes", YAML, "model: /m\nctx-size: 3\n", `f:2:1: unknown key "ctx-size"; did you mean "ctx_size"?`},
		{"no suggestion", YAML, "model: /m\nzzzzzzzzzzzz: 3\n", `f:2:1: unknown key "zzzzzzzzzzzz"`},
		{"yaml string for number", YAML, "model: /m\ntemperature: hot\n", `f:2:14: temperature: want number, got string "hot"`},
		{"yaml quoted number", YAML, "model: /m\nctx_size: \"4096\"\n", `f:2:11: ctx_size: want integer, got string "4096"`},
		{"json fraction for int", JSON, `{"ctx_size": 3.5}`, `f:1:14: ctx_size: want integer, got number 3.5`},
		{"toml bool for string", TOML, "model = true\n", `f:1:9: model: want string, got boolean true`},
		{"list item", YAML, "lora:\n  - a\n  - 3\n", `f:3:5: lora[1]: want string, got integer 3`},
		{"env value", TOML, "[env]\nA = 1\n", `f:2:5: env.A: want string, got integer 1 (quote it)`},
		{"yaml duplicate", YAML, "model: /m\nmodel: /n\n", `f:2:1: duplicate key "model" (first at line 1)`},
		{"json duplicate", JSON, "{\"model\": \"/m\",\n\"model\": \"/n\"}", `f:2:1: duplicate key "model" (first at line 1)`},
		{"toml duplicate", TOML, "model = \"/m\"\nmodel = \"/n\"\n", `f:2:1: duplicate key "model" (first at line 1)`},
		{"toml duplicate table", TOML, "[env]\nA = \"1\"\n[env]\nB = \"2\"\n", `f:3:2: duplicate table [env]`},
		{"toml dotted duplicate", TOML, "env.A = \"1\"\n[env]\nA = \"2\"\n", `f:3:1: duplicate key "A" (first at line 1)`},
		{"toml extend inline table", TOML, "env = { A = \"1\" }\nenv.B = \"2\"\n", `f:2:1: duplicate key "env" (first at line 1)`},
		{"empty", YAML, "", `f:1:1: empty spec`},
		{"blank", TOML, "  \n\n", `f:1:1: empty spec`},
		{"only comment", YAML, "# nothing\n", `f:1:1: empty spec`},
		{"only comment toml", TOML, "# nothing\n", `f:1:1: empty spec`},
		{"json null", JSON, "null", `f:1:1: empty spec`},
		{"not a mapping", YAML, "- a\n- b\n", `f:1:1: a spec must be a mapping of keys, got list`},
		{"json array", JSON, "[1]", `f:1:1: a spec must be a mapping of keys, got list`},
		{"yaml syntax", YAML, "model: [a\n", `f:1:8: syntax error: sequence end token ']' not found`},
		{"json syntax", JSON, "{\"model\": \"/m\",}", `f:1:16: syntax error: invalid character '}' looking for beginning of object key string`},
		{"json trailing", JSON, "{} {}", `f:1:4: syntax error: unexpected data after the top-level value`},
		{"json truncated", JSON, "{\"model\": ", `f:1:11: syntax error: unexpected end of JSON`},
		{"toml syntax", TOML, "model = \"/m\nx", `f:1:12: syntax error: basic strings cannot have new lines`},
		{"toml array table", TOML, "model = \"/m\"\n[[lora]]\n", `f:2:3: arrays of tables are not supported in spec files`},
		{"yaml alias", YAML, "a: &x /m\nmodel: *x\n", `f:2:8: YAML aliases are not supported in spec files`},
		{"two documents", YAML, "model: /m\n---\nmodel: /n\n", `f:3:6: more than one document; a spec file holds one instance`},
		{"invalid utf8", YAML, "model: \xff\n", `f:1:1: not valid UTF-8`},
		{"null value", YAML, "model:\n", `f:1:1: model: want string, got null`},
		{"two errors", YAML, "modle: /m\nctx_size: x\n", "f:1:1: unknown key \"modle\"; did you mean \"model\"?\nf:2:11: ctx_size: want integer, got string \"x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode([]byte(tt.data), tt.f, "f")
			if err == nil {
				t.Fatalf("Decode = %+v, want error %q", s, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("error does not match ErrInvalid")
			}
			if _, ok := AsList(err); !ok {
				t.Error("error is not an ErrorList")
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	yaml := `# comment
name: qwen
state: stopped
env:
  HIP_VISIBLE_DEVICES: "0"
extra_args: ["--foo", "bar baz"]
model: /models/q.gguf
temperature: 0
ctx_size: 4096
flash_attn: true
lora:
  - a.gguf
chat_template: ""
`
	toml := `name = "qwen"
state = "stopped"
extra_args = ["--foo", "bar baz"]
model = "/models/q.gguf"
temperature = 0
ctx_size = 4_096
flash_attn = true
lora = ["a.gguf"]
chat_template = ""

[env]
HIP_VISIBLE_DEVICES = "0"
`
	json := `{"name": "qwen", "state": "stopped", "env": {"HIP_VISIBLE_DEVICES": "0"},
	"extra_args": ["--foo", "bar baz"], "model": "/models/q.gguf", "temperature": 0.0,
	"ctx_size": 4096.0, "flash_attn": true, "lora": ["a.gguf"], "chat_template": ""}`
	want := &Spec{
		Name: "qwen", State: "stopped", Env: map[string]string{"HIP_VISIBLE_DEVICES": "0"},
		ExtraArgs: []string{"--foo", "bar baz"}, Model: ptr("/models/q.gguf"), Temperature: ptr(0.0),
		CtxSize: ptr(4096), FlashAttn: ptr(true), Lora: []string{"a.gguf"}, ChatTemplate: ptr(""),
	}
	for f, data := range map[Format]string{YAML: yaml, TOML: toml, JSON: json} {
		t.Run(string(f), func(t *testing.T) {
			got, err := Decode([]byte(data), f, "qwen."+string(f))
			if err != nil {
				t.Fatal(err)
			}
			if !Equal(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if err := got.Validate("qwen", nil); err != nil {
				t.Errorf("Validate: %v", err)
			}
			args, err := got.Args(nil)
			if err != nil {
				t.Fatal(err)
			}
			if j := strings.Join(args, "|"); !strings.Contains(j, "|--temp|0|") || !strings.Contains(j, "--chat-template||") {
				t.Errorf("zero values not emitted: %q", args)
			}
		})
	}
}
