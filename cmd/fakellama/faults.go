package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// faults is the fault-injection configuration read from FAKELLAMA_*
// environment variables (see the package documentation).
type faults struct {
	loadDelay          time.Duration
	tokenDelay         time.Duration
	tokens             int
	crashAfterRequests int64
	crashAfter         time.Duration
	exitCode           int
	exitAtStart        int
	exitAtStartSet     bool
	ignoreSIGTERM      bool
	grandchild         bool
	grandchildPidFile  string
	longLine           int
	longLineEach       bool
	argvFile           string
	pidFile            string
	checkModel         bool
}

// readFaults parses the FAKELLAMA_* variables through getenv. A malformed
// value is an error naming the variable.
func readFaults(getenv func(string) string) (*faults, error) {
	f := &faults{tokens: 16, exitCode: 1}
	var errs []string
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a non-negative Go duration", name, v))
				return
			}
			*dst = d
		}
	}
	num := func(name string, dst *int, set *bool) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a non-negative integer", name, v))
				return
			}
			*dst = n
			if set != nil {
				*set = true
			}
		}
	}
	dur("FAKELLAMA_LOAD_DELAY", &f.loadDelay)
	dur("FAKELLAMA_TOKEN_DELAY", &f.tokenDelay)
	dur("FAKELLAMA_CRASH_AFTER", &f.crashAfter)
	num("FAKELLAMA_TOKENS", &f.tokens, nil)
	var crashN int
	num("FAKELLAMA_CRASH_AFTER_REQUESTS", &crashN, nil)
	f.crashAfterRequests = int64(crashN)
	num("FAKELLAMA_EXIT_CODE", &f.exitCode, nil)
	num("FAKELLAMA_EXIT_AT_START", &f.exitAtStart, &f.exitAtStartSet)
	num("FAKELLAMA_LONG_LINE", &f.longLine, nil)
	f.ignoreSIGTERM = getenv("FAKELLAMA_IGNORE_SIGTERM") == "1"
	f.grandchild = getenv("FAKELLAMA_GRANDCHILD") == "1"
	f.grandchildPidFile = getenv("FAKELLAMA_GRANDCHILD_PIDFILE")
	f.longLineEach = getenv("FAKELLAMA_LONG_LINE_EACH") == "1"
	f.argvFile = getenv("FAKELLAMA_ARGV_FILE")
	f.pidFile = getenv("FAKELLAMA_PID_FILE")
	f.checkModel = getenv("FAKELLAMA_CHECK_MODEL") == "1"
	if len(errs) > 0 {
		return nil, fmt.Errorf("read fault injection settings: %s", strings.Join(errs, "; "))
	}
	return f, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so a reader never sees a partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temp for %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if werr != nil || serr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, firstErr(werr, serr, cerr))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// writeArgv writes args as a JSON array of strings to path, atomically.
func writeArgv(path string, args []string) error {
	if args == nil {
		args = []string{}
	}
	b, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode argv: %w", err)
	}
	return writeFileAtomic(path, b)
}

// grandchildEnv marks the hidden mode in which the binary only sleeps.
const grandchildEnv = "FAKELLAMA_GRANDCHILD_MODE"

// grandchildLifetime bounds how long a grandchild lingers if nobody kills
// it, so a broken test cannot leave it behind forever.
const grandchildLifetime = 10 * time.Minute

// spawnGrandchild re-executes this binary in the hidden sleeping mode, in
// the same process group, inheriting stderr (so it also holds the log pipe
// open). It returns the grandchild's pid; a goroutine reaps it.
func spawnGrandchild() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), grandchildEnv+"=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start grandchild: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// grandchildMain is the hidden mode: sleep, then exit 0.
func grandchildMain() int {
	time.Sleep(grandchildLifetime)
	return 0
}

// longLine returns one log line of exactly n bytes including the newline.
func longLine(n int) []byte {
	if n <= 0 {
		return nil
	}
	const prefix = "srv  log_server_r: request body: "
	b := make([]byte, n)
	copy(b, prefix)
	for i := min(len(prefix), n); i < n; i++ {
		b[i] = 'x'
	}
	b[n-1] = '\n'
	return b
}
