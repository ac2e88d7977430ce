#!/usr/bin/env bash
# Runs every notebook in order with papermill into build/executed/, against a served model.
# Starts what it needs (models, image, container) and stops the container again if it started it.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[notebooks] $*" >&2; }
out=build/executed
mkdir -p "$out"

[ -f models/metadata.json ] || make -s models
if docker info >/dev/null 2>&1; then
  bash scripts/build_image.sh
else
  say "no Docker engine answers: notebooks will use the local serving venv (scripts/serve.sh)"
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
