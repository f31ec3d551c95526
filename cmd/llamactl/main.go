// Command llamactl is a declarative control plane for llama.cpp's
// llama-server: a directory of instance spec files is the desired state,
// and the daemon keeps real llama-server processes matching it.
//
//	llamactl serve    [--config FILE] [--specs DIR] [--listen HOST:PORT]
//	                  [--data-dir DIR] [--llama-server PATH]
//	llamactl validate [--llama-server PATH] PATH...
//	llamactl version
//
// Exit codes: 0 success, 1 failure (validate found problems, serve failed
// at run time), 2 bad usage or configuration.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `llamactl: a declarative control plane for llama.cpp's llama-server

Usage:
  llamactl serve    [--config FILE] [--specs DIR] [--listen HOST:PORT]
                    [--data-dir DIR] [--llama-server PATH]
  llamactl validate [--llama-server PATH] PATH...
  llamactl version

Run "llamactl COMMAND --help" for a command's flags.
`

// run is main without the process exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serveCmd(args[1:], stdout, stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "llamactl: version takes no arguments (got %q)\n", args[1:])
			return 2
		}
		fmt.Fprintf(stdout, "llamactl %s\n", versionString())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "llamactl: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// parseFlags parses a subcommand's flags; ok is false when the caller
// should return code (0 for --help, 2 for a bad flag).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}
