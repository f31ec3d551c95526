package spec

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func readHelp(t *testing.T) *Flags {
	t.Helper()
	b, err := os.ReadFile("testdata/help.txt")
	if err != nil {
		t.Fatal(err)
	}
	f := ParseHelp(string(b))
	f.Version = "9431"
	return f
}

func TestParseHelp(t *testing.T) {
	f := readHelp(t)
	tests := []struct {
		flag  string
		has   bool
		value bool
	}{
		{"--help", true, false},
		{"-h", true, false},
		{"--usage", true, false},
		{"--threads", true, true},
		{"-t", true, true},
		{"--flash-attn", true, true},
		{"-fa", true, true},
		{"--temp", true, true},
		{"--temperature", true, true},
		{"--prio", true, true},
		{"--fim-qwen-1.5b-default", true, false},
		{"--no-kv-offload", true, false},
		{"-nkvo", true, false},
		{"--control-vector-layer-range", true, true},
		{"--override-tensor", true, true},
		{"--spec-type", true, true},
		{"--mmproj-auto", true, false},
		{"--no-mmproj", true, false},
		{"--mmproj", true, true},
		{"--tensor-split", true, true},
		{"--device", true, true},
		{"--kv-unified", true, false},
		{"-no-kvu", true, false},
		{"--spec-draft-n-ctx", true, true},
		{"-cd", true, true},
		{"--dump-kv-cache", false, false},
		{"--draft-max", false, false},
		{"--spec-ngram-size-n", false, false},
		{"--spec-draft-n-max", true, true},
		{"--verbose-prompt", false, false},
		{"-----", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			if got := f.Has(tt.flag); got != tt.has {
				t.Errorf("Has(%q) = %v, want %v", tt.flag, got, tt.has)
			}
			if got := f.TakesValue(tt.flag); got != tt.value {
				t.Errorf("TakesValue(%q) = %v, want %v", tt.flag, got, tt.value)
			}
		})
	}
	if n := len(f.List()); n < 300 {
		t.Errorf("parsed %d flag spellings, want at least 300", n)
	}
}

func TestRecordedFlagsMatchTestdata(t *testing.T) {
	f := readHelp(t)
	if !slices.Equal(f.List(), RecordedFlags().List()) {
		t.Fatal("embedded help-b9431.txt differs from testdata/help.txt")
	}
	for _, fl := range f.List() {
		if f.TakesValue(fl) != RecordedFlags().TakesValue(fl) {
			t.Errorf("%s: shape differs", fl)
		}
	}
}

// removed are the seed options the recorded llama-server no longer has.
var removed = []string{"dump_kv_cache", "embd_bge_small_en_default", "embd_e5_small_en_default", "embd_gte_small_default", "verbose_prompt"}

// TestEveryOptionAgainstHelp builds argv for each llama-server option
// alone, with a true and a false/zero value, and checks every emitted
// flag against help.txt: it exists, and it takes a value exactly when
// argv gives it one.
func TestEveryOptionAgainstHelp(t *testing.T) {
	f := readHelp(t)
	checked := 0
	for _, o := range options {
		if o.group != gServer {
			continue
		}
		t.Run(o.key, func(t *testing.T) {
			for _, variant := range []int{0, 1} {
				s := &Spec{}
				setSample(s, o, variant)
				argv, err := s.Args(f)
				if slices.Contains(removed, o.key) {
					if err == nil || !strings.Contains(err.Error(), o.key) || !strings.Contains(err.Error(), "9431") {
						t.Fatalf("Args = %v, %v; want an error naming %s and version 9431", argv, err, o.key)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if o.kind == oBool && variant == 1 && len(argv) == 0 {
					continue // a false with no negative form is omitted
				}
				if len(argv) == 0 {
					t.Fatalf("no argv for %s (variant %d)", o.key, variant)
				}
				checkArgv(t, f, argv)
			}
		})
		if !slices.Contains(removed, o.key) {
			checked++
		}
	}
	server := 0
	for _, o := range options {
		if o.group == gServer {
			server++
		}
	}
	if server != 156-2 { // host and port are added by the supervisor
		t.Errorf("%d llama-server options besides host and port, want 154", server)
	}
	t.Logf("checked %d of %d llama-server options against help.txt (%d removed, host/port added by the supervisor)", checked, server+2, len(removed))
}

// checkArgv walks argv: each flag must exist; a flag that takes a value
// consumes the next argument (two for --control-vector-layer-range).
func checkArgv(t *testing.T, f *Flags, argv []string) {
	t.Helper()
	for i := 0; i < len(argv); i++ {
		fl := argv[i]
		if !f.Has(fl) {
			t.Fatalf("argv %v: %s is not in help.txt", argv, fl)
		}
		if !f.TakesValue(fl) {
			continue
		}
		n := 1
		if fl == "--control-vector-layer-range" {
			n = 2
		}
		if i+n > len(argv)-1 {
			t.Fatalf("argv %v: %s lacks its value", argv, fl)
		}
		i += n
	}
}

func TestFlagShapes(t *testing.T) {
	bare := ParseHelp("-fa,   --flash-attn                     enable flash attention\n--no-escape                            x\n")
	bare.Version = "old"
	tests := []struct {
		name  string
		flags *Flags
		spec  *Spec
		want  []string
	}{
		{"flash attn on, recorded", nil, &Spec{FlashAttn: ptr(true)}, []string{"--flash-attn", "on"}},
		{"flash attn off, recorded", nil, &Spec{FlashAttn: ptr(false)}, []string{"--flash-attn", "off"}},
		{"flash attn bare", bare, &Spec{FlashAttn: ptr(true)}, []string{"--flash-attn"}},
		{"flash attn bare false", bare, &Spec{FlashAttn: ptr(false)}, nil},
		{"escape false", nil, &Spec{Escape: ptr(false)}, []string{"--no-escape"}},
		{"no_mmap false", nil, &Spec{NoMmap: ptr(false)}, []string{"--mmap"}},
		{"no_mmap true", nil, &Spec{NoMmap: ptr(true)}, []string{"--no-mmap"}},
		{"no_mmproj false", nil, &Spec{NoMmproj: ptr(false)}, []string{"--mmproj-auto"}},
		{"no_webui", nil, &Spec{NoWebUI: ptr(true)}, []string{"--no-ui"}},
		{"mlock false omitted", nil, &Spec{Mlock: ptr(false)}, nil},
		{"temperature zero", nil, &Spec{Temperature: ptr(0.0)}, []string{"--temp", "0"}},
		{"temperature", nil, &Spec{Temperature: ptr(0.7)}, []string{"--temp", "0.7"}},
		{"empty string kept", nil, &Spec{ChatTemplate: ptr("")}, []string{"--chat-template", ""}},
		{"priority", nil, &Spec{Priority: ptr(2), PriorityBatch: ptr(0)}, []string{"--prio", "2", "--prio-batch", "0"}},
		{"fim preset", nil, &Spec{FIMQwen1p5BDefault: ptr(true)}, []string{"--fim-qwen-1.5b-default"}},
		{"lists repeat", nil, &Spec{Lora: []string{"a", "b"}}, []string{"--lora", "a", "--lora", "b"}},
		{"layer range", nil, &Spec{ControlVectorLayerRange: ptr("1 10")}, []string{"--control-vector-layer-range", "1", "10"}},
		{"host port not emitted", nil, &Spec{Host: ptr("0.0.0.0"), Port: ptr(8080)}, nil},
		{"extra args last", nil, &Spec{ExtraArgs: []string{"--foo", "x y"}, Model: ptr("/m")}, []string{"--model", "/m", "--foo", "x y"}},
		{"draft max new flag", nil, &Spec{DraftMax: ptr(8)}, []string{"--spec-draft-n-max", "8"}},
		{"draft max old flag", ParseHelp("--draft-max N   max draft tokens\n"), &Spec{DraftMax: ptr(8)}, []string{"--draft-max", "8"}},
		{"supervision not emitted", nil, &Spec{State: "stopped", AutoRestart: ptr(true), IdleTimeout: ptr(5)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.spec.Args(tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Args = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestArgsOrderDeterministic(t *testing.T) {
	s := &Spec{Model: ptr("/m"), Temperature: ptr(0.5), CtxSize: ptr(10), Alias: ptr("a"), Env: map[string]string{"A": "1"}}
	first, err := s.Args(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--alias", "a", "--ctx-size", "10", "--model", "/m", "--temp", "0.5"}
	if !slices.Equal(first, want) {
		t.Fatalf("Args = %q, want %q", first, want)
	}
	for range 20 {
		got, _ := s.Clone().Args(nil)
		if !slices.Equal(got, first) {
			t.Fatalf("Args not deterministic: %q vs %q", got, first)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseVersion(t *testing.T) {
	b, err := os.ReadFile("testdata/version.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := ParseVersion(string(b)); got != RecordedVersion {
		t.Errorf("ParseVersion = %q, want %q", got, RecordedVersion)
	}
	if got := ParseVersion("garbage"); got != "" {
		t.Errorf("ParseVersion(garbage) = %q", got)
	}
}

func TestDesiredState(t *testing.T) {
	if got := (&Spec{}).DesiredState(); got != StateRunning {
		t.Errorf("default state %q", got)
	}
	if got := (&Spec{State: StateStopped}).DesiredState(); got != StateStopped {
		t.Errorf("state %q", got)
	}
}
