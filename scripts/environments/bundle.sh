#!/usr/bin/env bash
# `make bundle`: one archive with everything `make setup BUNDLE=...` (unbundle.sh) needs to set the
# kit up on a machine with no network:
#   build/wheels/           the serving wheelhouse, as image/wheelhouse.sh makes it (venvs/serving, the image)
#   build/notebook-wheels/  every wheel venvs/notebooks installs (requirements-notebooks.txt, the kit's
#                           build backend, pip), for this platform: Linux x86_64, CPython 3.11
#   build/debs/             Debian's prometheus and blackbox exporter and what they depend on beyond a
#                           Debian base system (monitoring/monitor.sh installs what is missing)
#   docker-images.tar.gz    `docker save` of the serving image and the base image it is built on
#   inputs.sha256           the requirement files it was made from: a checkout with others refuses it
# Not in it: the repository itself (git clone it), Python 3.11, Docker, make, git, a browser.
# Writes build/bundle/docker-model-kit-offline-<VERSION>.tar (BUNDLE_DIR to put it elsewhere) and
# prints its path on the last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(cat VERSION)
image=${IMAGE:-docker-model:$version}
out_dir=${BUNDLE_DIR:-build/bundle}
python=${PYTHON:-python3}
say() { echo "[bundle] $*" >&2; }

[ "$(uname -m)" = x86_64 ] || { say "the bundle is made for x86_64 and this machine is $(uname -m)"; exit 1; }
# The wheels are fetched for the Python that fetches them: the kit's.
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  say "Python 3.11 is needed (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11"; exit 1; }
docker info >/dev/null 2>&1 || { say "no Docker engine answers: start Docker, the bundle holds the images"; exit 1; }
docker image inspect "$image" >/dev/null 2>&1 || { say "no image $image: run 'make image' first"; exit 1; }

bash image/wheelhouse.sh

# The notebook environment's wheels, fetched again only when what they are resolved from changes.
# `pip wheel`, not `pip download`: a package that comes as source is built here, so the laptop
# needs no compiler. setuptools is the kit's build backend (`pip install -e .`), pip is what
# setup.sh upgrades each venv to. A wheel the serving wheelhouse holds already (numpy, scipy,
# scikit-learn...: the same versions, stripped) is not carried twice: unbundle.sh gives pip both.
inputs=(requirements-notebooks.txt constraints.txt pyproject.toml requirements.lock image/strip_wheels.py)
nb_wheels=build/notebook-wheels
nb_stamp=$nb_wheels/.done-$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$nb_stamp" ]; then
  say "fetching the notebook environment's wheels (requirements-notebooks.txt, about 170 MB)"
  rm -rf "$nb_wheels"
  mkdir -p "$nb_wheels"
  "$python" -m pip wheel -q --progress-bar off -w "$nb_wheels" -r requirements-notebooks.txt \
    "setuptools>=68" "pip>=23"
  for whl in "$nb_wheels"/*.whl; do
    if [ -e "build/wheels/${whl##*/}" ]; then rm "$whl"; fi
  done
  touch "$nb_stamp"
fi

# Debian's packages, for `make monitor` and `make scale`'s balancer: the three and, recursively, what they depend on, except
# what every Debian system has (priority required, important or standard; libraries; perl).
debs=build/debs
if ! ls "$debs"/prometheus_*.deb "$debs"/nginx-light_*.deb >/dev/null 2>&1; then
  command -v apt-get >/dev/null || { say "no apt-get: the bundle's Debian packages can only be fetched on Debian"; exit 1; }
  say "fetching Debian's prometheus, prometheus-blackbox-exporter and nginx-light with their dependencies"
  packages=$(python3 - prometheus prometheus-blackbox-exporter nginx-light <<'PY'
import re, subprocess, sys

def field(info, name):
    match = re.search(rf"^{name}: (.*)$", info, re.MULTILINE)
    return match.group(1) if match else ""

wanted, queue = [], list(sys.argv[1:])
while queue:
    package = queue.pop(0)
    if package in wanted:
        continue
    info = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                          capture_output=True, text=True).stdout
    if not info:  # a virtual package: what provides it is another alternative, or already installed
        continue
    base = field(info, "Priority") in ("required", "important", "standard") \
        or field(info, "Section") in ("libs", "perl") or field(info, "Essential") == "yes"
    if base and package not in sys.argv[1:]:
        continue
    wanted.append(package)
    for alternatives in filter(None, field(info, "Depends").split(",")):
        first = alternatives.split("|")[0]
        queue.append(re.sub(r"\(.*\)|:any", "", first).strip())
print(" ".join(wanted))
PY
)
  rm -rf "$debs"
  mkdir -p "$debs"
  (cd "$debs" && apt-get download -qq $packages 2>&1 | grep -v "unsandboxed as root" >&2 || true)
  ls "$debs"/prometheus_*.deb >/dev/null 2>&1 || { say "apt-get download failed (above): check that 'apt-get update' works"; exit 1; }
fi

base=$(bash image/base_image.sh | tail -n1)
stage=$(mktemp -d /tmp/kit-bundle.XXXXXX)
trap 'rm -rf "$stage"' EXIT
say "saving the images $image and $base"
docker save "$image" "$base" | gzip -1 >"$stage/docker-images.tar.gz"
sha256sum "${inputs[@]}" >"$stage/inputs.sha256"

mkdir -p "$out_dir"
bundle=$out_dir/docker-model-kit-offline-$version.tar
tar -cf "$bundle.partial" -C "$stage" inputs.sha256 docker-images.tar.gz -C "$PWD" build/wheels "$nb_wheels" "$debs"
mv "$bundle.partial" "$bundle"
say "wrote $bundle: $(( $(stat -c %s "$bundle") / 1000000 )) MB (install: make setup BUNDLE=$bundle)"
echo "$bundle"
