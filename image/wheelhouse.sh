#!/usr/bin/env bash
# Prepares build/wheels, every wheel the image serves with, on the host (the host reaches the
# package registry; a container being built does not):
#   1. downloads exactly requirements.lock, checking each file's sha256 (--require-hashes);
#   2. turns the few source-only packages into wheels, so the image needs no compiler;
#   3. strips the symbol tables from their shared objects (image/strip_wheels.py; binutils is
#      installed through apt if missing): the image build has no binutils;
#   4. writes build/wheels/install.txt, each wheel with its sha256, for the image's
#      `pip install --require-hashes --no-index`.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=build/wheels
stamp=$wheels/.done-$(cat requirements.lock image/strip_wheels.py | sha256sum | cut -c1-16)
[ -f "$stamp" ] && exit 0

say() { echo "[wheelhouse] $*" >&2; }
rm -rf "$wheels" build/downloads
mkdir -p "$wheels" build/downloads
say "downloading requirements.lock, hashes checked (about 85 MB)"
python3 -m pip download -q --no-deps --require-hashes -d build/downloads -r requirements.lock
for file in build/downloads/*; do
  case "$file" in
    *.whl) mv "$file" "$wheels/" ;;
    *) say "building a wheel from $(basename "$file")"
       python3 -m pip wheel -q --no-deps -w "$wheels" "$file" ;;
  esac
done
rm -rf build/downloads
if ! command -v strip >/dev/null; then
  say "installing binutils (apt-get), for strip"
  bash "$(dirname "$0")/../scripts/environments/apt_install.sh" binutils \
    || { say "could not install binutils: install it (it provides strip)"; exit 1; }
fi
python3 image/strip_wheels.py "$wheels"
python3 - "$wheels" <<'PY'
import hashlib, pathlib, sys
wheels = pathlib.Path(sys.argv[1])
lines = []
for whl in sorted(wheels.glob("*.whl")):
    name, version = whl.name.split("-")[:2]
    if name in ("pip", "wheel"):  # tools, not served
        continue
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    lines.append(f"{name}=={version} --hash=sha256:{digest}")
(wheels / "install.txt").write_text("\n".join(lines) + "\n")
PY
touch "$stamp"
