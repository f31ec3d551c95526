//go:build race

package e2e

// raceEnabled says the tests run under the race detector; the binaries
// under test are then built with -race too, so a data race in the daemon
// fails the run (and the build reuses the race-built packages).
const raceEnabled = true
