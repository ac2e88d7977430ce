#!/usr/bin/env bash
# Everything `make bench` measures, made ready in two lanes that run side by side: the kit's
# environments and image in the foreground, the article's image and the MLServer venv in the
# background, then MLServer's image on the kit's base (mostly downloads and debootstrap, which leave a core free). From a fresh clone this
# takes about as long as the longer lane instead of both. Idempotent: each step skips what exists.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[bench] $*" >&2; }

# apt first, and once: two lanes installing at the same time would fight over dpkg's lock.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  bash scripts/environments/apt_install.sh "${missing[@]}" \
    || { say "could not install ${missing[*]}: install them, then run make bench again"; exit 1; }
fi

mkdir -p build
log=build/bench-peers.log
say "building the peers in the background: docker-model:article, venvs/mlserver (log: $log)"
( bash bench/build_article_image.sh && bash bench/setup_mlserver.sh ) >"$log" 2>&1 &
peers=$!
trap 'kill $peers 2>/dev/null || true' EXIT

make --no-print-directory setup image

if ! wait "$peers"; then
  trap - EXIT
  tail -n 30 "$log" >&2
  say "building the peers failed (the end of $log is above)"
  exit 1
fi
trap - EXIT
grep -E '^\[(article-image|mlserver)\]' "$log" >&2 || true
bash bench/build_mlserver_image.sh
