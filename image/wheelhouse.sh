#!/usr/bin/env bash
# Prepares a wheelhouse, every wheel the serving environment installs, on the host (the host reaches
# the package registry; a container being built does not):
#   image/wheelhouse.sh [PLATFORM]   a serving platform of scripts/environments/platforms.py;
#                                    by default the image's (the Docker engine's Linux), into build/wheels
#   1. downloads exactly requirements.lock for that platform, checking each file's sha256 (--require-hashes);
#   2. turns the few source-only packages into wheels, so the image needs no compiler;
#   3. on the Linux the wheels are for, strips the symbol tables from their shared objects
#      (image/strip_wheels.py; binutils is installed through apt if missing): the image build has no binutils;
#   4. writes install.txt beside them, each wheel with its sha256, for
#      `pip install --require-hashes --no-index` (the image, venvs/serving).
set -euo pipefail
cd "$(dirname "$0")/.."
platforms=scripts/environments/platforms.py
platform=${1:-$(python3 "$platforms" image platform)}
wheels=$(python3 "$platforms" wheelhouse "$platform")
stamp=$wheels/.done-$( (cat requirements.lock image/strip_wheels.py; echo "$platform") \
  | python3 scripts/environments/content_stamp.py)
[ -f "$stamp" ] && exit 0

say() { echo "[wheelhouse] $*" >&2; }
downloads=$wheels.downloads
rm -rf "$wheels" "$downloads"
mkdir -p "$wheels" "$downloads"
say "downloading requirements.lock for $platform, hashes checked (about 85 MB)"
# shellcheck disable=SC2046  # pip-target prints one argument per word
python3 -m pip download -q --no-deps --require-hashes $(python3 "$platforms" pip-target "$platform") \
  -d "$downloads" -r requirements.lock
for file in "$downloads"/*; do
  case "$file" in
    *.whl) mv "$file" "$wheels/" ;;
    *) say "building a wheel from $(basename "$file")"
       python3 -m pip wheel -q --no-deps -w "$wheels" "$file" ;;
  esac
done
rm -rf "$downloads"
if python3 "$platforms" strip "$platform"; then
  if ! command -v strip >/dev/null; then
    say "installing binutils (apt-get), for strip"
    bash scripts/environments/apt_install.sh binutils \
      || { say "could not install binutils: install it (it provides strip)"; exit 1; }
  fi
  python3 image/strip_wheels.py "$wheels"
else
  say "not stripping the wheels' shared objects: GNU strip runs only on the Linux they are for (a larger image)"
fi
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
