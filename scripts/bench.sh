#!/usr/bin/env bash
# Benchmarks: supervisor start/stop overhead, reconcile latency and load,
# and the proxy against the stand-in server (ours vs direct, same run).
set -euo pipefail
cd "$(dirname "$0")/.."
time="${BENCHTIME:-3s}"
go test -run '^$' -bench . -benchtime "$time" -benchmem ./runtime ./reconcile ./httpapi
