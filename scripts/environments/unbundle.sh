#!/usr/bin/env bash
# `make setup BUNDLE=file.tar`: sets the kit up from `make bundle`'s archive, with no network.
# Unpacks its wheels and Debian packages where the kit looks for them (build/wheels, which
# image/wheelhouse.sh then finds complete; build/notebook-wheels; build/debs, which
# monitoring/monitor.sh installs from), loads its images into Docker, then runs setup.sh with pip
# told to use those wheels only. After that `make image`, `make serve` and `make monitor` need no
# network either.
set -euo pipefail
bundle=$(realpath -e "${1:?usage: unbundle.sh BUNDLE.tar}" 2>/dev/null) || {
  echo "[unbundle] no bundle at $1: make it with 'make bundle' on a machine with network" >&2; exit 1; }
cd "$(dirname "$0")/../.."
say() { echo "[unbundle] $*" >&2; }

[ "$(uname -m)" = x86_64 ] || { say "the bundle holds x86_64 packages and this machine is $(uname -m): set up with network instead"; exit 1; }
tar -tf "$bundle" inputs.sha256 >/dev/null 2>&1 || { say "$bundle is not an archive of 'make bundle'"; exit 1; }
tar -xOf "$bundle" inputs.sha256 | sha256sum --check --quiet - || {
  say "$bundle was made from other requirement files than this checkout's (above):" \
      "check out the commit it was made from, or make it again here with 'make bundle'"; exit 1; }

say "unpacking the wheels and Debian packages into build/"
rm -rf build/wheels build/notebook-wheels build/debs
tar -xf "$bundle" build

if docker info >/dev/null 2>&1; then
  say "loading the images into Docker"
  tar -xOf "$bundle" docker-images.tar.gz | docker load >&2
else
  say "no Docker engine answers: the images are not loaded (start Docker and run this again;" \
      "meanwhile 'make serve' serves from venvs/serving)"
fi

PIP_NO_INDEX=1 PIP_FIND_LINKS="$PWD/build/notebook-wheels $PWD/build/wheels" exec bash scripts/environments/setup.sh
