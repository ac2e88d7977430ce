#!/usr/bin/env bash
# A minimal Debian root file system with Python 3, from the mirror apt is configured with
# (installs debootstrap through apt if missing). Used to build base images where no registry answers.
#   image/debootstrap_rootfs.sh SUITE DIR [ARCH]   (bookworm: Python 3.11; bullseye: Python 3.9;
#                                                   ARCH amd64 or arm64, by default this machine's)
set -euo pipefail
suite=$1 rootfs=$2 arch=${3:-}
say() { echo "[debootstrap] $*" >&2; }

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap (apt-get)"
  bash "$(dirname "$0")/../scripts/environments/apt_install.sh" debootstrap \
    || { say "could not install debootstrap: install it, or make an official Python image available"; exit 1; }
fi
# The mirror apt is configured with (deb822 sources or the classic list).
mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list \
         | grep -v security | head -n1 | awk '{print ($1=="deb") ? ($2 ~ /^\[/ ? $3 : $2) : $2}' || true)
mirror=${DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}

say "$suite${arch:+ ($arch)} from $mirror (about a minute)"
debootstrap --variant=minbase ${arch:+--arch="$arch"} --include=python3,python3-distutils "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
  || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; say "debootstrap failed (log above)"; exit 1; }
rm -f "$rootfs.log"
