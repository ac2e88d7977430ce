#!/usr/bin/env bash
# Builds bench/mlserver:1.7.1, MLServer serving the kit's model, on the base image the kit's image
# uses (image/base_image.sh) from a wheelhouse downloaded on the host (build/mlserver-wheels), so
# that it builds where no registry answers, as the kit's does. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${MLSERVER_IMAGE:-bench/mlserver:1.7.1}
wheels=build/mlserver-wheels
ctx=build/mlserver-context
say() { echo "[mlserver] $*" >&2; }

docker info >/dev/null 2>&1 || { say "no Docker engine answers"; exit 1; }
base=$(bash image/base_image.sh | tail -n1)
# Rebuilt when its recipe, the model or the kit's base changes.
recipe=$( (cat "$0" bench/mlserver/requirements.txt bench/mlserver/image/Dockerfile bench/mlserver/*.json \
           constraints.txt models/binary-lr.joblib; docker image inspect -f '{{.Id}}' "$base") | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "bench.recipe"}}' "$image" 2>/dev/null)" = "$recipe" ]; then
  exit 0
fi

stamp=$wheels/.done-$(cat bench/mlserver/requirements.txt constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "downloading MLServer 1.7.1 and its dependencies into $wheels"
  rm -rf "$wheels"; mkdir -p "$wheels"
  python3 -m pip download -q -d "$wheels" -r bench/mlserver/requirements.txt -c constraints.txt pip
  for sdist in "$wheels"/*.tar.gz "$wheels"/*.zip; do
    [ -e "$sdist" ] || continue
    python3 -m pip wheel -q --no-deps -w "$wheels" "$sdist" && rm "$sdist"
  done
  touch "$stamp"
fi

rm -rf "$ctx"; mkdir -p "$ctx/models/binary-lr"
cp bench/mlserver/image/Dockerfile "$ctx/"
cp -r "$wheels" "$ctx/wheels"
cp bench/mlserver/requirements.txt constraints.txt "$ctx/wheels/"
# The model's settings, pointing at the artifact beside them. The server's settings come from the
# image's environment (Dockerfile): with a settings.json, MLServer would ignore MLSERVER_* variables.
python3 - "$ctx/models/binary-lr" <<'PY'
import json, pathlib, sys
model = json.loads(pathlib.Path("bench/mlserver/model-settings.json").read_text())
model["parameters"]["uri"] = "./model.joblib"
(pathlib.Path(sys.argv[1]) / "model-settings.json").write_text(json.dumps(model, indent=2))
PY
cp models/binary-lr.joblib "$ctx/models/binary-lr/model.joblib"
say "building $image on $base"
docker build -q --build-arg BASE_IMAGE="$base" --label bench.recipe="$recipe" -t "$image" "$ctx" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
say "$image ready ($(( size / 1000000 )) MB)"
