#!/usr/bin/env bash
# Makes sure a Python 3.11 base image exists for the Dockerfile's BASE_IMAGE, for the Docker engine's
# architecture (amd64 or arm64: scripts/environments/platforms.py).
# Order: an image already present, then a pull of python:3.11-slim, then (no registry reachable)
# a minimal Debian bookworm with python3 from the apt mirror this machine uses, imported as an image.
# Prints the name of the base image to use on its last line.
set -euo pipefail

official=python:3.11-slim
local_base=${LOCAL_BASE_IMAGE:-local/bookworm-python:3.11}
platforms=$(dirname "$0")/../scripts/environments/platforms.py
arch=$(python3 "$platforms" image debian)
say() { echo "[base-image] $*" >&2; }

if [ "$(docker image inspect -f '{{.Architecture}}' "$official" 2>/dev/null)" = "$arch" ]; then echo "$official"; exit 0; fi
# The local base is rebuilt when this recipe changes.
recipe=$(cat "$0" "$(dirname "$0")/debootstrap_rootfs.sh" "$(dirname "$0")/slim_rootfs.py" \
  | python3 "$(dirname "$0")/../scripts/environments/content_stamp.py")
if [ "$(docker image inspect -f '{{index .Config.Labels "kit.recipe"}}' "$local_base" 2>/dev/null)" = "$recipe" ]; then
  echo "$local_base"; exit 0
fi
# timeout is GNU coreutils', not on macOS.
pull=(docker pull -q --platform "$(python3 "$platforms" image docker)" "$official")
command -v timeout >/dev/null && pull=(timeout 60 "${pull[@]}")
if "${pull[@]}" >/dev/null 2>&1; then echo "$official"; exit 0; fi

[ "$(uname -s)" = Linux ] || { say "$official cannot be pulled, and the local base is built with debootstrap, on Linux only: 'docker pull $official'"; exit 1; }
say "$official cannot be pulled (no registry reachable): building $local_base ($arch) from Debian packages"
rootfs=$(mktemp -d /tmp/bookworm-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
bash "$(dirname "$0")/debootstrap_rootfs.sh" bookworm "$rootfs" "$arch"

# Slim: only the packages the container uses at run time (Python, its libraries, sh, coreutils;
# no apt, dpkg, perl), then nothing here is read at run time by a Python service (dpkg's status
# file stays, listing what is left, for scanners).
chroot "$rootfs" /usr/bin/python3.11 - < "$(dirname "$0")/slim_rootfs.py"
rm -rf "$rootfs"/usr/share/{doc,man,info,locale,lintian,linda,zoneinfo,perl5,gdb} "$rootfs"/var/cache/{apt,debconf}/* \
       "$rootfs"/usr/lib/"$(python3 "$platforms" image triplet)"/gconv "$rootfs"/var/lib/dpkg/info \
       "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/usr/lib/python3.11/test \
       "$rootfs"/usr/lib/python3.11/{idlelib,tkinter,lib2to3,ensurepip,pydoc_data}
find "$rootfs"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} +

say "importing as $local_base"
tar -C "$rootfs" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  -c 'CMD ["python3"]' -c "LABEL kit.recipe=$recipe" - "$local_base" >/dev/null
# What the image build, the server, the HEALTHCHECK and the tests need from the base must work:
# every extension module of the standard library loads, sh runs kill and tr, coreutils run.
docker run --rm "$local_base" sh -c '
  python3 -W ignore::DeprecationWarning -c "import importlib, os, sys
for f in sorted(os.listdir(\"/usr/lib/python3.11/lib-dynload\")):
    importlib.import_module(f.split(\".\")[0])
import ssl, sqlite3, hashlib, ctypes.util, urllib.request, multiprocessing, distutils.util
assert ctypes.util.find_library(\"c\"), \"ldconfig\""
  sleep 30 & kill $! && [ "$(echo abc | tr a-c A-C)" = ABC ] && mkdir -p /tmp/x && chown 0:0 /tmp/x && ls /tmp/x' \
  || { docker rmi "$local_base" >/dev/null; say "the slimmed base lacks something it needs (above)"; exit 1; }
echo "$local_base"
