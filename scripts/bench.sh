#!/usr/bin/env bash
# Benchmarks: supervisor start/stop overhead, reconcile latency and load,
# and the proxy against the stand-in server (ours vs direct, same run):
# in-process (httpapi) and as the built daemon (e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
time="${BENCHTIME:-3s}"
requests="${BENCH_REQUESTS:-20000}"
go test -run '^$' -bench . -benchtime "$time" -benchmem ./runtime
go test -run '^$' -bench . -benchtime "$time" -benchmem ./reconcile
go test -run '^$' -bench Proxy -benchtime "${requests}x" ./httpapi
go test -run '^$' -bench Daemon -benchtime "${requests}x" ./e2e
