#!/usr/bin/env bash
# Runs a command against a served model: makes sure the models and the image exist, starts the
# server if none answers on :9000, runs the command, then stops what it started (the server, and
# Prometheus if the command started it). Used by run_notebooks.sh and run_tests.sh.
#   scripts/serve/with_model_server.sh COMMAND [ARG...]
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { echo "[server] $*" >&2; }

[ -f models/metadata.json ] || make -s models
if docker info >/dev/null 2>&1; then
  bash image/build.sh
else
  say "no Docker engine answers: using the local serving venv instead (scripts/serve/serve.sh)"
fi
started=0
if ! bash scripts/serve/serve.sh status >/dev/null 2>&1; then
  bash scripts/serve/serve.sh start
  started=1
fi
monitor_was_running=0
bash monitoring/monitor.sh status >/dev/null 2>&1 && monitor_was_running=1
cleanup() {
  if [ "$started" = 1 ]; then bash scripts/serve/serve.sh stop; fi
  if [ "$monitor_was_running" = 0 ]; then bash monitoring/monitor.sh stop; fi
}
trap cleanup EXIT
"$@"
