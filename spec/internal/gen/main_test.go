package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate fails when spec_gen.go is not what the generator
// makes from the swagger copy; run `go generate ./spec` to refresh it.
func TestGeneratedUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "spec_gen.go")
	if err := run("../../testdata/llamactl-v0.2.0.swagger.yaml", out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../spec_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("spec/spec_gen.go is out of date; run: go generate ./spec")
	}
}

func TestGoName(t *testing.T) {
	for key, want := range map[string]string{
		"api_key": "APIKey", "hf_token": "HFToken", "model_url": "ModelURL", "ctx_size": "CtxSize",
		"fim_qwen_1_5b_default": "FIMQwen1p5BDefault", "threads_http": "ThreadsHTTP",
	} {
		if got := goName(key); got != want {
			t.Errorf("goName(%q) = %q, want %q", key, got, want)
		}
	}
}
