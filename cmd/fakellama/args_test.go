package main

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseHelpArity(t *testing.T) {
	tests := map[string]int{
		"--flash-attn": 1, "-fa": 1, "-ngl": 1, "--n-gpu-layers": 1, "--jinja": 0, "--no-jinja": 0,
		"--mmap": 0, "--no-mmap": 0, "-nkvo": 0, "--control-vector-layer-range": 2, "-ot": 1,
		"--override-tensor": 1, "--spec-draft-ngl": 1, "--n-gpu-layers-draft": 1, "-h": 0, "--usage": 0,
		"--temp": 1, "--fim-qwen-1.5b-default": 0, "--split-mode": 1, "--port": 1, "--host": 1,
		"-m": 1, "--metrics": 0, "--embeddings": 0, "--api-key": 1, "--spec-type": 1, "-dr": 1,
		"--ctx-checkpoints": 1, "-ctxcp": 1, "--log-colors": 1, "--sleep-idle-seconds": 1,
	}
	for name, want := range tests {
		got, ok := flagArity[name]
		if !ok || got != want {
			t.Errorf("%s: arity %d (known %v), want %d", name, got, ok, want)
		}
	}
	for _, absent := range []string{"--temperature-x", "--dump-kv-cache", "--verbose-prompt", "----- common params -----"} {
		if _, ok := flagArity[absent]; ok {
			t.Errorf("%s should not be a flag", absent)
		}
	}
	if len(flagArity) < 400 {
		t.Errorf("only %d option names parsed from help.txt", len(flagArity))
	}
}

func TestParseArgs(t *testing.T) {
	o, err := parseArgs([]string{"-m", "/m/x.gguf", "--alias", "a,b", "--api-key", "k1", "--api_key", "k2",
		"--metrics", "--embedding", "-c", "1024", "--host", "0.0.0.0", "--port", "9", "-np", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if o.model != "/m/x.gguf" || !reflect.DeepEqual(o.aliases, []string{"a", "b"}) ||
		!reflect.DeepEqual(o.apiKeys, []string{"k1", "k2"}) || !o.metrics || !o.embeddings ||
		o.ctxSize != 1024 || o.host != "0.0.0.0" || o.port != 9 || o.parallel != 2 || o.modelID() != "a" {
		t.Errorf("parsed %+v", o)
	}
	o, err = parseArgs(nil)
	if err != nil || o.host != "127.0.0.1" || o.port != 8080 || o.modelID() != "fakellama" || o.hasModelSource {
		t.Errorf("defaults %+v, %v", o, err)
	}
	var ae *argError
	if _, err := parseArgs([]string{"--nope"}); !errors.As(err, &ae) {
		t.Errorf("unknown flag error %v", err)
	}
}

func TestReadFaults(t *testing.T) {
	env := map[string]string{
		"FAKELLAMA_LOAD_DELAY": "1s", "FAKELLAMA_TOKENS": "3", "FAKELLAMA_EXIT_AT_START": "0",
		"FAKELLAMA_CRASH_AFTER_REQUESTS": "4",
	}
	f, err := readFaults(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if f.loadDelay != time.Second || f.tokens != 3 || !f.exitAtStartSet || f.exitAtStart != 0 ||
		f.crashAfterRequests != 4 || f.exitCode != 1 {
		t.Errorf("faults %+v", f)
	}
	for _, bad := range []map[string]string{
		{"FAKELLAMA_LOAD_DELAY": "soon"}, {"FAKELLAMA_TOKENS": "-1"}, {"FAKELLAMA_EXIT_CODE": "x"},
	} {
		if _, err := readFaults(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	got := string(appendJSONString(nil, "a\"b\\c\n\x01é"))
	if want := `"a\"b\\c\n\u0001é"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
