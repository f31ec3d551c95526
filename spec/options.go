package spec

import (
	"reflect"
	"strings"
)

// optKind is how an option is stored and checked.
type optKind int

const (
	oString  optKind = iota // *string
	oInt                    // *int
	oFloat                  // *float64
	oBool                   // *bool
	oStrings                // []string
	oEnv                    // map[string]string
	oPlain                  // string (name, state)
)

func (k optKind) String() string {
	switch k {
	case oString, oPlain:
		return "string"
	case oInt:
		return "integer"
	case oFloat:
		return "number"
	case oBool:
		return "boolean"
	case oStrings:
		return "list of strings"
	}
	return "mapping of strings"
}

// group says what an option is for.
type group int

const (
	gSupervision group = iota // read by llamactl, not passed on
	gListen                   // host and port: the supervisor adds them
	gServer                   // a llama-server flag
)

// option is one spec key: its Spec field, how it becomes argv and how it
// is validated. The table is in Spec field order, which is the order of
// keys in encoded files and of flags in argv.
type option struct {
	key   string
	kind  optKind
	index int
	group group

	// flags are the candidate flags, preferred first; the first one the
	// binary has is used. off are the candidates for a boolean's false
	// value (for no_* keys, the positive flag).
	flags []string
	off   []string
	// pair: the string value is two whitespace-separated arguments.
	pair bool
	// modelSource: setting the option (true for booleans) names the model.
	modelSource bool
	// min and max bound integers when hasMin / hasMax.
	min, max       int
	hasMin, hasMax bool
	note           string
}

// flagOverrides are the options whose flag is not "--" + key with '_'
// replaced by '-', or whose false value has a special flag.
var flagOverrides = map[string]struct{ flags, off []string }{
	"temperature":           {flags: []string{"--temp"}},
	"priority":              {flags: []string{"--prio"}},
	"priority_batch":        {flags: []string{"--prio-batch"}},
	"fim_qwen_1_5b_default": {flags: []string{"--fim-qwen-1.5b-default"}},
	"draft_max":             {flags: []string{"--spec-draft-n-max", "--draft-max"}},
	"draft_min":             {flags: []string{"--spec-draft-n-min", "--draft-min"}},
	"draft_p_min":           {flags: []string{"--spec-draft-p-min", "--draft-p-min"}},
	"ctx_size_draft":        {flags: []string{"--spec-draft-n-ctx", "--ctx-size-draft"}},
	"cache_type_k_draft":    {flags: []string{"--spec-draft-type-k", "--cache-type-k-draft"}},
	"cache_type_v_draft":    {flags: []string{"--spec-draft-type-v", "--cache-type-v-draft"}},
	"device_draft":          {flags: []string{"--spec-draft-device", "--device-draft"}},
	"gpu_layers_draft":      {flags: []string{"--spec-draft-ngl", "--gpu-layers-draft"}},
	"hf_repo_draft":         {flags: []string{"--spec-draft-hf", "--hf-repo-draft"}},
	"model_draft":           {flags: []string{"--spec-draft-model", "--model-draft"}},
	"no_mmproj":             {flags: []string{"--no-mmproj"}, off: []string{"--mmproj-auto"}},
	"no_webui":              {flags: []string{"--no-ui", "--no-webui"}, off: []string{"--ui", "--webui"}},
	"reranking":             {flags: []string{"--reranking", "--rerank"}},
	"embedding":             {flags: []string{"--embedding", "--embeddings"}},
	"sampling_seq":          {flags: []string{"--sampling-seq", "--sampler-seq"}},
	"gpu_layers":            {flags: []string{"--gpu-layers", "--n-gpu-layers"}},
	"predict":               {flags: []string{"--predict", "--n-predict"}},
}

// modelSources are the options that name the model to load; exactly one
// must be set, because llama-server without one becomes a router.
var modelSources = map[string]bool{
	"model": true, "hf_repo": true, "model_url": true,
	"fim_qwen_1_5b_default": true, "fim_qwen_3b_default": true, "fim_qwen_7b_default": true,
	"fim_qwen_7b_spec": true, "fim_qwen_14b_spec": true,
	"embd_bge_small_en_default": true, "embd_e5_small_en_default": true, "embd_gte_small_default": true,
}

type bounds struct{ min, max int }

const unbounded = 1 << 62

// intBounds are the sensible ranges of integer options; -1 (and -2 for
// predict) keep their llama-server meaning of "auto" or "unlimited".
var intBounds = map[string]bounds{
	"idle_timeout": {0, unbounded}, "stop_timeout": {0, unbounded}, "startup_timeout": {0, unbounded},
	"max_restarts": {0, unbounded}, "restart_delay_seconds": {0, unbounded},
	"port":       {1, 65535},
	"batch_size": {1, unbounded}, "ubatch_size": {1, unbounded},
	"ctx_size": {0, unbounded}, "ctx_size_draft": {0, unbounded},
	"threads": {-1, unbounded}, "threads_batch": {-1, unbounded}, "threads_http": {-1, unbounded},
	"parallel": {-1, unbounded}, "predict": {-2, unbounded}, "keep": {-1, unbounded},
	"gpu_layers": {-1, unbounded}, "gpu_layers_draft": {-1, unbounded},
	"cache_reuse": {0, unbounded}, "dry_allowed_length": {0, unbounded},
	"dry_penalty_last_n": {-1, unbounded}, "repeat_last_n": {-1, unbounded},
	"mirostat": {0, 2}, "cpu_strict": {0, 1}, "cpu_strict_batch": {0, 1},
	"poll": {0, 100}, "poll_batch": {0, 100},
	"priority": {-1, 3}, "priority_batch": {-1, 3},
	"top_k": {0, unbounded}, "timeout": {0, unbounded}, "main_gpu": {0, unbounded},
	"verbosity": {0, unbounded}, "yarn_orig_ctx": {0, unbounded},
	"draft_max": {0, unbounded}, "draft_min": {0, unbounded},
	"reasoning_budget": {-1, unbounded},
}

var notes = map[string]string{
	"name":                       "must equal the file stem",
	"state":                      "`running` (default) or `stopped`",
	"on_demand_start":            "start on the first request",
	"idle_timeout":               "stop after this many idle seconds",
	"env":                        "added to the process environment",
	"extra_args":                 "appended verbatim to argv",
	"stop_timeout":               "seconds from SIGTERM to SIGKILL (0: at once)",
	"startup_timeout":            "seconds allowed to become healthy",
	"auto_restart":               "restart after a crash",
	"max_restarts":               "restart budget",
	"restart_delay_seconds":      "delay before a restart",
	"host":                       "the supervisor passes `--host`",
	"port":                       "the supervisor passes `--port`; leased when absent",
	"control_vector_layer_range": "two numbers, `START END`",
	"flash_attn":                 "`on`/`off` where the flag takes a value",
	"log_colors":                 "`on`/`off` where the flag takes a value",
	"dump_kv_cache":              "removed from llama-server",
	"embd_bge_small_en_default":  "removed from llama-server",
	"embd_e5_small_en_default":   "removed from llama-server",
	"embd_gte_small_default":     "removed from llama-server",
	"verbose_prompt":             "removed from llama-server",
	"api_key":                    "secret: redacted in API output",
	"hf_token":                   "secret: redacted in API output",
}

var (
	options = buildOptions()
	byKey   = func() map[string]*option {
		m := make(map[string]*option, len(options))
		for _, o := range options {
			m[o.key] = o
		}
		return m
	}()
)

func buildOptions() []*option {
	t := reflect.TypeFor[Spec]()
	out := make([]*option, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if key == "" || key == "-" {
			continue
		}
		o := &option{key: key, index: i, note: notes[key], modelSource: modelSources[key]}
		switch f.Type.String() {
		case "*string":
			o.kind = oString
		case "*int":
			o.kind = oInt
		case "*float64":
			o.kind = oFloat
		case "*bool":
			o.kind = oBool
		case "[]string":
			o.kind = oStrings
		case "map[string]string":
			o.kind = oEnv
		case "string":
			o.kind = oPlain
		default:
			panic("spec: unsupported field type " + f.Type.String())
		}
		switch {
		case supervisionKeys[key]:
			o.group = gSupervision
		case key == "host" || key == "port":
			o.group = gListen
		default:
			o.group = gServer
			o.flags, o.off = defaultFlags(key, o.kind)
			if ov, ok := flagOverrides[key]; ok {
				o.flags = ov.flags
				if ov.off != nil {
					o.off = ov.off
				}
			}
		}
		if b, ok := intBounds[key]; ok {
			o.min, o.hasMin = b.min, true
			o.max, o.hasMax = b.max, b.max != unbounded
		}
		o.pair = key == "control_vector_layer_range"
		out = append(out, o)
	}
	return out
}

// supervisionKeys are read by llamactl only, never passed to llama-server.
var supervisionKeys = map[string]bool{
	"name": true, "state": true, "on_demand_start": true, "idle_timeout": true,
	"env": true, "extra_args": true, "stop_timeout": true, "startup_timeout": true,
	"auto_restart": true, "max_restarts": true, "restart_delay_seconds": true,
}

func defaultFlags(key string, k optKind) (flags, off []string) {
	dash := strings.ReplaceAll(key, "_", "-")
	if k != oBool {
		return []string{"--" + dash}, nil
	}
	if rest, ok := strings.CutPrefix(dash, "no-"); ok {
		return []string{"--" + dash}, []string{"--" + rest}
	}
	return []string{"--" + dash}, []string{"--no-" + dash}
}

// field returns the reflect.Value of o's field in s.
func (o *option) field(s *Spec) reflect.Value {
	return reflect.ValueOf(s).Elem().Field(o.index)
}

// present reports whether s sets o.
func (o *option) present(s *Spec) bool {
	v := o.field(s)
	switch o.kind {
	case oPlain:
		return v.String() != ""
	case oStrings, oEnv:
		return v.Len() > 0
	}
	return !v.IsNil()
}

// isModelSource reports whether o, as set in s, names the model.
func (o *option) isModelSource(s *Spec) bool {
	if !o.modelSource || !o.present(s) {
		return false
	}
	if o.kind == oBool {
		return *o.field(s).Interface().(*bool)
	}
	return true
}
