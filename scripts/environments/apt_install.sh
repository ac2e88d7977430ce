#!/usr/bin/env bash
# Installs Debian packages through apt-get, quietly:   scripts/environments/apt_install.sh PACKAGE...
# Fails with apt's own error when it cannot; the caller then says what to do.
set -euo pipefail
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
