package spec

import (
	"math/rand/v2"
	"testing"
)

const commented = `# Qwen 7B, tuned by hand.
model: /models/q.gguf  # the q4 quant

# sampling
temperature: 0.7   # a little creative
top_p: 0.9
env:
  # visible GPUs
  HIP_VISIBLE_DEVICES: "0"
# footer
`

func TestUpdateYAMLKeepsComments(t *testing.T) {
	tests := []struct {
		name string
		edit func(s *Spec)
		want string
	}{
		{"unchanged", func(s *Spec) {}, commented},
		{"change a scalar keeps its comment", func(s *Spec) { s.Temperature = ptr(0.2) }, `# Qwen 7B, tuned by hand.
model: /models/q.gguf  # the q4 quant

# sampling
temperature: 0.2  # a little creative
top_p: 0.9
env:
  # visible GPUs
  HIP_VISIBLE_DEVICES: "0"
# footer
`},
		{"remove a key with its comments", func(s *Spec) { s.Temperature = nil }, `# Qwen 7B, tuned by hand.
model: /models/q.gguf  # the q4 quant
top_p: 0.9
env:
  # visible GPUs
  HIP_VISIBLE_DEVICES: "0"
# footer
`},
		{"append new keys in table order", func(s *Spec) { s.State = StateStopped; s.CtxSize = ptr(4096) }, commented[:len(commented)-len("# footer\n")] + `state: stopped
ctx_size: 4096
# footer
`},
		{"change env", func(s *Spec) { s.Env = map[string]string{"A": "1"} }, `# Qwen 7B, tuned by hand.
model: /models/q.gguf  # the q4 quant

# sampling
temperature: 0.7   # a little creative
top_p: 0.9
env:
  A: "1"
# footer
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustDecode(t, commented, YAML)
			tt.edit(s)
			out, err := Update([]byte(commented), YAML, s)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", out, tt.want)
			}
		})
	}
}

func TestUpdateFallsBackToEncode(t *testing.T) {
	s := &Spec{Model: ptr("/m"), CtxSize: ptr(1)}
	for _, tt := range []struct {
		name string
		f    Format
		orig string
	}{
		{"flow yaml", YAML, "{model: /x}\n"},
		{"broken yaml", YAML, "model: [\n"},
		{"toml table", TOML, "# c\nmodel = \"/x\"\n[env]\nA = \"1\"\n"},
		{"json", JSON, `{"model": "/x"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Update([]byte(tt.orig), tt.f, s)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := Encode(s, tt.f)
			if string(out) != string(want) {
				t.Errorf("got %s, want %s", out, want)
			}
		})
	}
}

// TestUpdateProperty updates random files into random specs: the result
// always decodes back to the new spec.
func TestUpdateProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		a, b := randomSpec(r), randomSpec(r)
		for _, f := range []Format{YAML, TOML, JSON} {
			orig, err := Encode(a, f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Update(orig, f, b)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) == 0 {
				continue
			}
			got, err := Decode(out, f, "x")
			if err != nil || !Equal(got, b) {
				t.Fatalf("case %d %s: %v\n%s", i, f, err, out)
			}
		}
	}
}

const commentedTOML = `# Coder, from Hugging Face.
hf_repo = "org/coder"  # q8

# context
ctx_size = 4096 # big enough
lora = [
  "a.gguf", # first
]
# footer
`

func TestUpdateTOMLKeepsComments(t *testing.T) {
	tests := []struct {
		name string
		edit func(s *Spec)
		want string
	}{
		{"unchanged", func(s *Spec) {}, commentedTOML},
		{"change a scalar keeps its comment", func(s *Spec) { s.CtxSize = ptr(8192) }, `# Coder, from Hugging Face.
hf_repo = "org/coder"  # q8

# context
ctx_size = 8192  # big enough
lora = [
  "a.gguf", # first
]
# footer
`},
		{"remove and add", func(s *Spec) { s.Lora = nil; s.State = StateStopped }, `# Coder, from Hugging Face.
hf_repo = "org/coder"  # q8

# context
ctx_size = 4096 # big enough
state = "stopped"
# footer
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustDecode(t, commentedTOML, TOML)
			tt.edit(s)
			out, err := Update([]byte(commentedTOML), TOML, s)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", out, tt.want)
			}
		})
	}
}
