package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Paths of the binaries under test, built once by TestMain.
var (
	llamactlBin  string
	fakellamaBin string
)

// portBase is the first port of the ranges handed to daemons (see
// nextPortRange); it is random so that concurrent runs rarely collide.
var (
	portBase  = 20000 + 64*rand.IntN(100)
	portSlots atomic.Int32
)

// portsPerDaemon is the size of each daemon's port range; portSlotCount
// ranges are handed out in turn, all below Linux's ephemeral ports
// (32768 and up).
const (
	portsPerDaemon = 48
	portSlotCount  = 100
)

// nextPortRange returns a port range no other running daemon of this run
// uses (ranges are reused only after portSlotCount daemons, e.g. with
// -count).
func nextPortRange() (lo, hi int) {
	i := (int(portSlots.Add(1)) - 1) % portSlotCount
	lo = portBase + i*portsPerDaemon
	return lo, lo + portsPerDaemon - 1
}

// client talks to the daemons. Keep-alives are off so that no idle
// connection goroutine outlives a test (goleak).
var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 30 * time.Second},
	Timeout:   30 * time.Second,
}

// waitBoundParallel is how many tests run at once unless -test.parallel
// is given: the tests mostly wait for processes and timers, so more of
// them than CPUs keeps the package fast without loading the machine.
const waitBoundParallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(waitBoundParallel))
	}
	dir, err := os.MkdirTemp("", "llamactl-e2e-bin-")
	if err == nil {
		// /proc/PID/exe shows the resolved path; compare against that.
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: create build dir: %v\n", err)
		os.Exit(1)
	}
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(mainRunner{m: m, dir: dir})
}

// mainRunner runs the tests and then removes the build directory, before
// goleak looks for leftover goroutines.
type mainRunner struct {
	m   *testing.M
	dir string
}

func (r mainRunner) Run() int {
	code := r.m.Run()
	client.CloseIdleConnections()
	os.RemoveAll(r.dir)
	return code
}

// buildBinaries builds llamactl and fakellama into dir, in one go command
// so that they link in parallel. A build failure fails the whole package:
// these tests never skip.
func buildBinaries(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	llamactlBin = filepath.Join(dir, "llamactl")
	fakellamaBin = filepath.Join(dir, "fakellama")
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", dir+string(filepath.Separator), "llamactl/cmd/llamactl", "llamactl/cmd/fakellama")
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("build llamactl and fakellama: %w\n%s", err, out)
	}
	for _, bin := range []string{llamactlBin, fakellamaBin} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	return nil
}
