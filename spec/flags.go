package spec

import (
	_ "embed"
	"regexp"
	"sort"
	"strings"
)

// Flags is what one llama-server binary accepts, parsed from its --help.
// The zero value knows no flags; a nil *Flags stands for the recorded
// build (see RecordedFlags).
type Flags struct {
	Version string // from --version, set by the caller; may be empty

	// takesValue maps every flag spelling (long and short) to whether it
	// takes a value.
	takesValue map[string]bool
	// desc is the first line of each flag's description.
	desc map[string]string
}

// RecordedVersion is the llama-server build whose --help is built in and
// used whenever no Flags are given.
const RecordedVersion = "9431"

//go:embed help-b9431.txt
var recordedHelp string

var recorded = func() *Flags {
	f := ParseHelp(recordedHelp)
	f.Version = RecordedVersion
	return f
}()

// RecordedFlags returns the flags of the recorded llama-server build
// (RecordedVersion). The result is shared: do not modify it.
func RecordedFlags() *Flags { return recorded }

var (
	gapRE  = regexp.MustCompile(`\s{2,}`)
	flagRE = regexp.MustCompile(`^--?[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// ParseHelp parses llama-server --help output: each line that starts with
// a flag lists its spellings, separated by ", ", the last one optionally
// followed by a value placeholder, then (after two or more spaces) the
// description. Flags whose description says the argument has been
// removed are left out.
func ParseHelp(help string) *Flags {
	f := &Flags{takesValue: map[string]bool{}, desc: map[string]string{}}
	lines := strings.Split(help, "\n")
	for li, line := range lines {
		line = strings.TrimRight(line, " \r\t")
		if !strings.HasPrefix(line, "-") || strings.HasPrefix(line, "---") {
			continue
		}
		segs := gapRE.Split(line, -1)
		head := segs[0]
		i := 1
		for ; i < len(segs) && strings.HasSuffix(head, ","); i++ {
			head += " " + segs[i]
		}
		desc := strings.Join(segs[min(i, len(segs)):], " ")
		if desc == "" && li+1 < len(lines) && strings.HasPrefix(lines[li+1], " ") {
			desc = strings.TrimSpace(lines[li+1])
		}
		var names []string
		value := false
		for _, item := range strings.Split(head, ",") {
			words := strings.Fields(item)
			if len(words) == 0 {
				continue
			}
			if !flagRE.MatchString(words[0]) {
				// part of a comma-separated placeholder such as N0,N1,...
				value = true
				continue
			}
			names = append(names, words[0])
			if len(words) > 1 {
				value = true
			}
		}
		if strings.Contains(desc, "argument has been removed") {
			continue // listed only to explain its removal
		}
		for _, n := range names {
			f.takesValue[n] = value
			f.desc[n] = desc
		}
	}
	return f
}

// Has reports whether the binary accepts flag (spelled with its dashes).
func (f *Flags) Has(flag string) bool {
	if f == nil {
		f = recorded
	}
	_, ok := f.takesValue[flag]
	return ok
}

// TakesValue reports whether flag takes a value (possibly optional, as
// --flash-attn [on|off|auto] does).
func (f *Flags) TakesValue(flag string) bool {
	if f == nil {
		f = recorded
	}
	return f.takesValue[flag]
}

// List returns every flag spelling, sorted.
func (f *Flags) List() []string {
	if f == nil {
		f = recorded
	}
	out := make([]string, 0, len(f.takesValue))
	for k := range f.takesValue {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Description returns the first line of flag's description in --help.
func (f *Flags) Description(flag string) string {
	if f == nil {
		f = recorded
	}
	return f.desc[flag]
}

func (f *Flags) version() string {
	if f == nil {
		return RecordedVersion
	}
	if f.Version == "" {
		return "unknown"
	}
	return f.Version
}

// pick returns the first of cands the binary has, or "".
func (f *Flags) pick(cands []string) string {
	for _, c := range cands {
		if f.Has(c) {
			return c
		}
	}
	return ""
}

var versionRE = regexp.MustCompile(`version:\s*(\S+)`)

// ParseVersion returns the build number from llama-server --version
// output ("version: 9431 (bf87261d4)" gives "9431"), or "" when absent.
func ParseVersion(out string) string {
	if m := versionRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}
