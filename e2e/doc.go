// Package e2e holds end-to-end tests of the llamactl binary. TestMain
// builds cmd/llamactl and cmd/fakellama (with -race when the tests run
// under -race, so a data race in the daemon fails them too); each test
// runs "llamactl serve" on its own temporary specs and data directories
// with fakellama standing in for llama-server, and drives it only from
// outside: spec files, the HTTP API, signals and the process table.
//
// Children are found without asking the daemon: every fakellama started
// for a test has the test's temporary root in its environment (the
// daemon passes E2E_FLEET_ROOT on, and the specs point FAKELLAMA_PID_FILE
// below the root), so /proc shows which processes belong to which test,
// and cleanups SIGKILL their process groups even when a test fails.
//
// Run them with the rest of the module (make test), or alone:
//
//	go test -race ./e2e/ [-run TestFleet/OpenAIProxy] [-v]
//
// The package has no code of its own; everything is in _test.go files.
package e2e
