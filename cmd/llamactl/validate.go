package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"llamactl/spec"
)

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("validate", flag.ContinueOnError)
	binary := fset.String("llama-server", "", "also check every option against this llama-server binary's --help")
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: llamactl validate [--llama-server PATH] PATH...

Lint spec files, or every spec file under directories, for use in a GitOps
repository's CI. Prints "file:line:col: message" for each problem; exits 0
when every file is valid, 1 otherwise.

Flags:
`)
		fset.PrintDefaults()
	}
	if code, ok := parseFlags(fset, args, stderr); !ok {
		return code
	}
	if fset.NArg() == 0 {
		fmt.Fprintln(stderr, "llamactl validate: no PATH given")
		fset.Usage()
		return 2
	}
	var flags *spec.Flags
	if *binary != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f, err := probeBinary(ctx, *binary)
		if err != nil {
			fmt.Fprintf(stderr, "llamactl validate: %v\n", err)
			return 2
		}
		flags = f
	}
	files, problems := collectSpecFiles(fset.Args())
	for _, f := range files {
		if err := spec.ValidateFile(f, flags); err != nil {
			var list spec.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					problems = append(problems, e.Error())
				}
			} else {
				problems = append(problems, fmt.Sprintf("%s: %v", f, err))
			}
		}
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%d problem(s) in %d file(s) checked\n", len(problems), len(files))
		return 1
	}
	fmt.Fprintf(stderr, "%d file(s) valid\n", len(files))
	return 0
}

// collectSpecFiles expands directories into the spec files the daemon
// would load (hidden entries skipped) and reports names claimed twice.
func collectSpecFiles(paths []string) (files []string, problems []string) {
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if path != p && strings.HasPrefix(name, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if _, ok := spec.FormatOf(path); ok && !strings.HasSuffix(name, "~") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
		}
		problems = append(problems, stemConflicts(found)...)
		files = append(files, found...)
	}
	return files, problems
}

func stemConflicts(files []string) []string {
	byStem := map[string][]string{}
	for _, f := range files {
		base := filepath.Base(f)
		stem := strings.TrimSuffix(base, filepath.Ext(base))
		byStem[stem] = append(byStem[stem], f)
	}
	var out []string
	for stem, fs := range byStem {
		if len(fs) < 2 {
			continue
		}
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%s:1:1: instance name %q is also claimed by %s", f, stem, strings.Join(others(fs, f), ", ")))
		}
	}
	sort.Strings(out)
	return out
}

func others(all []string, self string) []string {
	var out []string
	for _, s := range all {
		if s != self {
			out = append(out, s)
		}
	}
	return out
}
