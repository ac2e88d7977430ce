#!/usr/bin/env bash
# Builds the serving image (default docker-model:1.0.0) from the wheelhouse, on the official slim
# Python base where it can be had, else on a locally built Debian bookworm base; for the Docker
# engine's architecture (linux/amd64 or linux/arm64: scripts/environments/platforms.py).
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE:-docker-model:$(cat VERSION)}
say() { echo "[image] $*" >&2; }

docker info >/dev/null 2>&1 || { say "no Docker engine answers: start Docker (or use 'make serve', which falls back to venvs/serving)"; exit 1; }
[ -f models/metadata.json ] || { say "no trained models: run 'make models' first"; exit 1; }
platform=$(python3 scripts/environments/platforms.py image docker)
bash image/wheelhouse.sh
base=$(bash image/base_image.sh | tail -n1)
say "building $image for $platform on $base"
start=$(date +%s)
build=(docker build --platform "$platform" --label org.opencontainers.image.source=docker-model-kit --build-arg BASE_IMAGE="$base"
       --build-arg MODEL_VERSION="${image##*:}" -t "$image" .)
say "\$ ${build[*]}"
"${build[@]}" >&2
size=$(docker image inspect -f '{{.Size}}' "$image")
say "built $image in $(( $(date +%s) - start )) s: $(( size / 1000000 )) MB"
