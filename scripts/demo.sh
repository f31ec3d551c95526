#!/usr/bin/env bash
# Run the daemon on a copy of examples/instances with the stand-in server.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p demo-data
rm -rf demo-data/instances
cp -r examples/instances demo-data/instances
listen="${LLAMACTL_LISTEN:-127.0.0.1:8080}"
cat <<MSG
llamactl demo: specs in demo-data/instances (edit them and watch), logs in demo-data/logs.
Try, in another terminal:
  curl -s http://$listen/api/v1/instances | head -c 600; echo
  curl -s http://$listen/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{"model":"qwen-7b","messages":[{"role":"user","content":"hi"}]}'
Ctrl-C stops the daemon and every instance.
MSG
exec bin/llamactl serve --config examples/demo.yaml --listen "$listen"
