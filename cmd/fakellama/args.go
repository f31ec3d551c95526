package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

//go:embed help.txt
var helpText string

//go:embed version.txt
var versionText string

//go:embed list-devices.txt
var listDevicesText string

// helpDescColumn is the column where llama-server's --help starts the
// description of an option whose names and value hint fit before it.
const helpDescColumn = 40

// flagArity maps every option name of the recorded --help (e.g. "-ngl",
// "--flash-attn", "--no-mmap") to the number of values it consumes.
var flagArity = parseHelp(helpText)

// parseHelp reads llama-server's --help text and returns each option name
// with the number of values it takes. An option line starts with '-'; its
// head (names, then an optional value hint) ends at the description column
// or, when it is too long, at the end of the line. Names are separated by
// ", "; anything after the last name is the value hint. "START END" is the
// one two-value hint of llama.cpp.
func parseHelp(text string) map[string]int {
	arity := make(map[string]int, 512)
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, "-") || strings.HasPrefix(line, "-----") {
			continue
		}
		head := line
		if len(line) > helpDescColumn && line[helpDescColumn-2:helpDescColumn] == "  " {
			head = line[:helpDescColumn]
		}
		fields := strings.Fields(head)
		var names []string
		hint := ""
		for i, f := range fields {
			names = append(names, strings.TrimSuffix(f, ","))
			if !strings.HasSuffix(f, ",") {
				hint = strings.Join(fields[i+1:], " ")
				break
			}
		}
		n := 0
		switch {
		case hint == "START END":
			n = 2
		case hint != "":
			n = 1
		}
		for _, name := range names {
			arity[name] = n
		}
	}
	return arity
}

// options is the part of llama-server's command line the fake acts on.
type options struct {
	model      string
	host       string
	port       int
	aliases    []string
	apiKeys    []string
	metrics    bool
	embeddings bool
	ctxSize    int
	parallel   int
	// action is "help", "version", "list-devices" or "" (serve).
	action string
	// hasModelSource reports whether any of -m, -hf, -mu, -dr or a
	// preset flag was given.
	hasModelSource bool
	// seen records every option name given (normalized), with its values.
	seen map[string][]string
}

// modelID is what /v1/models reports as the model id and what responses
// carry when the request names no model: the first --alias, else the model
// file's base name, else "fakellama".
func (o *options) modelID() string {
	if len(o.aliases) > 0 {
		return o.aliases[0]
	}
	if o.model != "" {
		return filepath.Base(o.model)
	}
	return "fakellama"
}

// argError is a command-line error; its text is what llama-server prints.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

// parseArgs parses args (without the program name) the way llama.cpp's
// common_params_parse does: a "--" option has '_' replaced by '-', an
// unknown option or a positional word is "error: invalid argument: X", an
// option missing its value is an error too. Later values win.
func parseArgs(args []string) (*options, error) {
	o := &options{host: "127.0.0.1", port: 8080, parallel: -1, seen: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if strings.HasPrefix(arg, "--") {
			arg = strings.ReplaceAll(arg, "_", "-")
		}
		n, ok := flagArity[arg]
		if !ok {
			return nil, &argError{"error: invalid argument: " + arg}
		}
		if i+n >= len(args) {
			return nil, &argError{fmt.Sprintf("error while handling argument \"%s\": expected value for argument", arg)}
		}
		vals := args[i+1 : i+1+n]
		i += n
		o.seen[arg] = vals
		if err := o.apply(arg, vals); err != nil {
			return nil, &argError{fmt.Sprintf("error while handling argument \"%s\": %v", arg, err)}
		}
	}
	return o, nil
}

// apply records the effect of one option the fake understands.
func (o *options) apply(arg string, vals []string) error {
	val := ""
	if len(vals) > 0 {
		val = vals[0]
	}
	var err error
	switch arg {
	case "-h", "--help", "--usage":
		o.action = "help"
	case "--version":
		o.action = "version"
	case "--list-devices":
		o.action = "list-devices"
	case "-m", "--model":
		o.model = val
		o.hasModelSource = true
	case "-mu", "--model-url", "-hf", "-hfr", "--hf-repo", "-dr", "--docker-repo":
		o.hasModelSource = true
	case "--host":
		o.host = val
	case "--port":
		o.port, err = strconv.Atoi(val)
	case "-a", "--alias":
		o.aliases = splitList(val)
	case "--api-key":
		o.apiKeys = append(o.apiKeys, splitList(val)...)
	case "--api-key-file":
		var b []byte
		b, err = os.ReadFile(val)
		if err == nil {
			for line := range strings.SplitSeq(string(b), "\n") {
				if k := strings.TrimSpace(line); k != "" {
					o.apiKeys = append(o.apiKeys, k)
				}
			}
		}
	case "--metrics":
		o.metrics = true
	case "--embedding", "--embeddings":
		o.embeddings = true
	case "-c", "--ctx-size":
		o.ctxSize, err = strconv.Atoi(val)
	case "-np", "--parallel":
		o.parallel, err = strconv.Atoi(val)
	default:
		if strings.HasSuffix(arg, "-default") || strings.HasSuffix(arg, "-spec") {
			o.hasModelSource = true
		}
	}
	if err != nil {
		return fmt.Errorf("parse value %q: %w", val, err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
