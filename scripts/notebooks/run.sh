#!/usr/bin/env bash
# Runs every notebook in order with papermill (scripts/notebooks/run.py) into build/executed/,
# against a served model (scripts/serve/with_model_server.sh starts what is needed and stops it again).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" != "--inside" ]; then exec bash scripts/serve/with_model_server.sh bash "$0" --inside; fi

say() { echo "[notebooks] $*" >&2; }
out=build/executed
# Prometheus first, so that it has found and scraped the model by the time notebook 06 reads it
# (with_model_server.sh stops it again afterwards).
bash monitoring/monitor.sh start >/dev/null
venvs/notebooks/bin/python scripts/notebooks/run.py "$out" notebooks/[0-9][0-9]_*.ipynb
say "all notebooks ran; executed copies are in $out/ (make refresh-notebooks copies them into notebooks/)"
