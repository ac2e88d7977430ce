#!/usr/bin/env bash
# The test suite: unit tests, contract tests against the served model, and nbval over every notebook.
# Builds the image and starts the model if needed; stops it again if it started it.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[test] $*" >&2; }

[ -f models/metadata.json ] || make -s models
if docker info >/dev/null 2>&1; then
  bash scripts/build_image.sh
else
  say "no Docker engine answers: testing against the local serving venv instead"
fi
started=0
if ! bash scripts/serve.sh status >/dev/null 2>&1; then
  bash scripts/serve.sh start
  started=1
fi
monitor_was_running=0
bash scripts/monitor.sh status >/dev/null 2>&1 && monitor_was_running=1
cleanup() {
  if [ "$started" = 1 ]; then bash scripts/serve.sh stop; fi
  if [ "$monitor_was_running" = 0 ]; then bash scripts/monitor.sh stop; fi
}
trap cleanup EXIT

say "pytest: unit, contract, fault and monitoring tests, then every notebook under nbval"
venvs/notebooks/bin/python -m pytest -p no:cacheprovider -q -m "not reliability" \
  tests --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks "$@"
