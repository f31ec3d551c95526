// Package e2e holds end-to-end tests of the llamactl binary. They build
// cmd/llamactl and cmd/fakellama, run "llamactl serve" on a temporary spec
// directory with fakellama standing in for llama-server, and drive it only
// from outside: spec files, the HTTP API, signals and the process table.
//
// The package has no code of its own; everything is in _test.go files.
package e2e
