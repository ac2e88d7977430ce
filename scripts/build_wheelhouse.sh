#!/usr/bin/env bash
# Downloads every wheel the image serves with into build/wheels, on the host (the host reaches
# the package registry; a container being built does not). The few packages published only as
# source are turned into wheels here too, so the image installs with --no-index and no compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=build/wheels
stamp=$wheels/.done-$(cat requirements.txt constraints.txt | sha256sum | cut -c1-16)
[ -f "$stamp" ] && exit 0

say() { echo "[wheelhouse] $*" >&2; }
mkdir -p "$wheels"
say "downloading the serving requirements into $wheels (about 85 MB)"
python3 -m pip download -q -d "$wheels" -r requirements.txt pip wheel
for sdist in "$wheels"/*.tar.gz; do
  [ -e "$sdist" ] || continue
  say "building a wheel from $(basename "$sdist")"
  python3 -m pip wheel -q --no-deps -w "$wheels" "$sdist"
  rm "$sdist"
done
rm -f "$wheels"/.done-*
touch "$stamp"
