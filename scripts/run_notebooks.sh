#!/usr/bin/env bash
# Runs every notebook in order with papermill into build/executed/, against a served model
# (scripts/with_model_server.sh starts what is needed and stops it again).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--inside" ]; then exec bash scripts/with_model_server.sh bash "$0" --inside; fi

say() { echo "[notebooks] $*" >&2; }
out=build/executed
mkdir -p "$out"
# Prometheus first, so that it has found and scraped the model by the time notebook 06 reads it
# (with_model_server.sh stops it again afterwards).
bash scripts/monitor.sh start >/dev/null
for notebook in notebooks/[0-9][0-9]_*.ipynb; do
  name=$(basename "$notebook")
  begin=$(date +%s)
  say "running $name"
  venvs/notebooks/bin/papermill --cwd notebooks --kernel python3 --no-progress-bar \
    "$notebook" "$out/$name" 2>"$out/${name%.ipynb}.log" \
    || { tail -n 30 "$out/${name%.ipynb}.log" >&2; say "$name failed: see $out/$name"; exit 1; }
  say "  done in $(( $(date +%s) - begin )) s -> $out/$name"
done
say "all notebooks ran; executed copies are in $out/ (make refresh-notebooks copies them into notebooks/)"
