package spec

import (
	"fmt"
	"strings"
)

// ReferenceMarkdown returns a markdown table of every spec key in table
// order: its type, the llama-server flag it becomes with the recorded
// build (or "supervision" / "—") and a short note. README.md holds it
// between the spec-reference markers.
func ReferenceMarkdown() string {
	var b strings.Builder
	b.WriteString("| key | type | becomes | note |\n|---|---|---|---|\n")
	for _, o := range options {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", o.key, o.kind, becomes(o), mdEscape(noteFor(o)))
	}
	return b.String()
}

func becomes(o *option) string {
	switch {
	case o.key == "extra_args":
		return "argv, verbatim at the end"
	case o.key == "env":
		return "process environment"
	}
	switch o.group {
	case gSupervision:
		return "supervision"
	case gListen:
		return "—"
	}
	flag := recorded.pick(o.flags)
	if flag == "" {
		return "— (removed in build " + RecordedVersion + ")"
	}
	code := func(s string) string { return "`" + s + "`" }
	switch {
	case o.kind == oBool && recorded.TakesValue(flag):
		return code(flag+" on") + " / " + code(flag+" off")
	case o.kind == oBool:
		if off := recorded.pick(o.off); off != "" {
			return code(flag) + " / " + code(off)
		}
		return code(flag)
	case o.kind == oStrings:
		return code(flag+" V") + ", repeated"
	case o.pair:
		return code(flag + " START END")
	}
	return code(flag + " V")
}

func noteFor(o *option) string {
	var parts []string
	if o.note != "" && !strings.HasPrefix(o.note, "removed") {
		parts = append(parts, o.note)
	} else if d := recorded.Description(recorded.pick(o.flags)); d != "" && o.group == gServer {
		parts = append(parts, shorten(d))
	}
	if o.modelSource {
		parts = append(parts, "model source")
	}
	switch {
	case o.hasMin && o.hasMax:
		parts = append(parts, fmt.Sprintf("%d to %d", o.min, o.max))
	case o.hasMin:
		parts = append(parts, fmt.Sprintf("at least %d", o.min))
	}
	if o.kind == oBool && o.group == gServer && recorded.pick(o.off) == "" && !recorded.TakesValue(recorded.pick(o.flags)) && recorded.pick(o.flags) != "" {
		parts = append(parts, "false: omitted")
	}
	return strings.Join(parts, "; ")
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// shorten cuts a help description to its first clause, at most about 60
// characters, on a word boundary.
func shorten(d string) string {
	d = strings.TrimSpace(d)
	if i := strings.Index(d, " (default"); i > 0 {
		d = d[:i]
	}
	if len(d) <= 60 {
		return strings.TrimRight(d, ",;:")
	}
	cut := strings.LastIndex(d[:60], " ")
	if cut < 20 {
		cut = 60
	}
	return strings.TrimRight(d[:cut], ",;:") + "…"
}
