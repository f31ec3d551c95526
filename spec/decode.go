package spec

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"unicode/utf8"
)

// source is where a decoded spec came from: the file and the position of
// each key ("env.NAME" for env entries) and of its value.
type source struct {
	file string
	keys map[string]pos
	vals map[string]pos
}

// keyPos returns the position of key in the file s came from.
func (s *Spec) keyPos(key string) pos {
	if s.src == nil {
		return pos{}
	}
	return s.src.keys[key]
}

// valPos returns the position of key's value in the file s came from.
func (s *Spec) valPos(key string) pos {
	if s.src == nil {
		return pos{}
	}
	if p, ok := s.src.vals[key]; ok {
		return p
	}
	return s.src.keys[key]
}

func (s *Spec) file() string {
	if s.src == nil {
		return ""
	}
	return s.src.file
}

// MaxSize is the largest spec file Decode reads (1 MiB); real specs are
// a few hundred bytes.
const MaxSize = 1 << 20

// FormatOf returns the format of a spec file by its extension
// (.yaml/.yml, .toml, .json); ok is false for any other file.
func FormatOf(path string) (f Format, ok bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return YAML, true
	case ".toml":
		return TOML, true
	case ".json":
		return JSON, true
	}
	return "", false
}

// utf8BOM is the UTF-8 byte order mark.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Decode strictly decodes one spec. file is used only in error messages.
// Unknown keys (with a nearest-key suggestion), wrong types and duplicate
// keys are errors located by line and column; the error is an ErrorList.
// The positions of keys are kept in the Spec so that Validate can locate
// its errors too.
func Decode(data []byte, f Format, file string) (*Spec, error) {
	s, e := decode(data, f, file)
	if len(e.list) > 0 {
		return nil, e.err()
	}
	return s, nil
}

// decode returns the errors found and, unless the file could not be read
// as a mapping at all, the spec of the keys that decoded.
func decode(data []byte, f Format, file string) (*Spec, *errs) {
	e := &errs{file: file}
	// A byte order mark (some Windows editors write one) is no part of
	// the spec; positions count from after it, as editors show them.
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		e.add(pos{}, "", "empty spec")
		return nil, e
	}
	if len(data) > MaxSize {
		e.add(pos{}, "", "spec larger than %d bytes", MaxSize)
		return nil, e
	}
	if !utf8.Valid(data) {
		e.add(pos{}, "", "not valid UTF-8")
		return nil, e
	}
	var root *node
	switch f {
	case YAML:
		root = parseYAML(data, e)
	case JSON:
		root = parseJSON(data, e)
	case TOML:
		root = parseTOML(data, e)
	default:
		e.add(pos{}, "", "unknown format %q", string(f))
		return nil, e
	}
	if root == nil && len(e.list) > 0 {
		return nil, e
	}
	if root == nil || (root.kind == kNull) {
		e.add(pos{}, "", "empty spec")
		return nil, e
	}
	if root.kind != kMap {
		e.add(root.at, "", "a spec must be a mapping of keys, got %s", root.kind)
		return nil, e
	}
	s := &Spec{src: &source{file: file, keys: map[string]pos{}, vals: map[string]pos{}}}
	for _, ent := range root.keys {
		o := byKey[ent.key]
		if o == nil {
			msg := fmt.Sprintf("unknown key %q", ent.key)
			if sug := suggest(ent.key); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
			e.add(ent.at, ent.key, "%s", msg)
			continue
		}
		s.src.keys[ent.key] = ent.at
		s.src.vals[ent.key] = ent.val.at
		setOption(s, o, ent, e)
	}
	return s, e
}

func typeErr(e *errs, at pos, key string, want optKind, got *node) {
	e.add(at, key, "%s: want %s, got %s", key, want, got.describe())
}

// setOption type-checks ent's value against o and stores it in s.
func setOption(s *Spec, o *option, ent *entry, e *errs) {
	v, key, at := ent.val, ent.key, ent.val.at
	fv := o.field(s)
	switch o.kind {
	case oPlain, oString:
		if v.kind != kString {
			typeErr(e, at, key, o.kind, v)
			return
		}
		if o.kind == oPlain {
			fv.SetString(v.str)
		} else {
			fv.Set(reflect.ValueOf(&v.str))
		}
	case oInt:
		i, ok := v.asInt()
		if !ok {
			typeErr(e, at, key, o.kind, v)
			return
		}
		fv.Set(reflect.ValueOf(&i))
	case oFloat:
		x, ok := v.asFloat()
		if !ok {
			typeErr(e, at, key, o.kind, v)
			return
		}
		fv.Set(reflect.ValueOf(&x))
	case oBool:
		if v.kind != kBool {
			typeErr(e, at, key, o.kind, v)
			return
		}
		b := v.b
		fv.Set(reflect.ValueOf(&b))
	case oStrings:
		if v.kind != kList {
			typeErr(e, at, key, o.kind, v)
			return
		}
		var list []string
		for i, it := range v.items {
			if it.kind != kString {
				e.add(it.at, key, "%s[%d]: want string, got %s", key, i, it.describe())
				continue
			}
			list = append(list, it.str)
		}
		if len(list) > 0 {
			fv.Set(reflect.ValueOf(list))
		}
	case oEnv:
		if v.kind != kMap {
			typeErr(e, at, key, o.kind, v)
			return
		}
		m := map[string]string{}
		for _, ev := range v.keys {
			full := key + "." + ev.key
			s.src.keys[full] = ev.at
			s.src.vals[full] = ev.val.at
			if ev.val.kind != kString {
				e.add(ev.val.at, full, "%s: want string, got %s (quote it)", full, ev.val.describe())
				continue
			}
			m[ev.key] = ev.val.str
		}
		if len(m) > 0 {
			fv.Set(reflect.ValueOf(m))
		}
	}
}

// suggest returns the known key nearest to an unknown one, or "". A
// llama-server flag name written as a key (temp, n_gpu_layers) suggests
// the key that becomes that flag.
func suggest(key string) string {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimLeft(key, "-"), "-", "_"))
	if o := byKey[norm]; o != nil {
		return o.key
	}
	for _, o := range options {
		for _, f := range append(append([]string{}, o.flags...), helpAliases[o.key]...) {
			if strings.ReplaceAll(strings.TrimLeft(f, "-"), "-", "_") == norm {
				return o.key
			}
		}
	}
	keys := make([]string, len(options))
	for i, o := range options {
		keys[i] = o.key
	}
	return Closest(norm, keys)
}

// helpAliases are other names of an option's flag in llama-server --help,
// used only to suggest a key for a misnamed one.
var helpAliases = map[string][]string{
	"gpu_layers":  {"--n-gpu-layers", "-ngl"},
	"predict":     {"--n-predict"},
	"ctx_size":    {"-c", "--n-ctx"},
	"temperature": {"--temp"},
	"embedding":   {"--embeddings"},
	"reranking":   {"--rerank"},
	"typical":     {"--typical-p"},
	"hf_repo":     {"-hf"},
	"model":       {"-m"},
	"verbose":     {"--log-verbose"},
	"verbosity":   {"--log-verbosity"},
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 128 {
		a = a[:128]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Closest returns the word of known nearest to word by edit distance, or
// "" when none is close (more than a third of word's length away, at
// least 2). Configuration loaders use it for "did you mean" hints.
func Closest(word string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		if d := editDistance(word, k); best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD > max(2, len(word)/3) {
		return ""
	}
	return best
}
