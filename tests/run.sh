#!/usr/bin/env bash
# The test suite: unit, contract, fault, monitoring and browser tests, then nbval over every notebook,
# against a served model (scripts/serve/with_model_server.sh starts what is needed and stops it again).
set -euo pipefail
cd "$(dirname "$0")/.."
without_docker=()
if ! docker info >/dev/null 2>&1; then
  echo "[test] no Docker engine answers: notebooks 03, 07, 08 and 10 (images, replicas) are left out of nbval," \
       "and the fault tests are skipped" >&2
  without_docker=(--ignore=notebooks/03_build_image.ipynb --ignore=notebooks/07_scale_out.ipynb
                  --ignore=notebooks/08_ab_test.ipynb --ignore=notebooks/10_retrain_canary.ipynb)
fi
# tests/test_browser.py drives Debian's Chromium: installed here when missing and run as root (without
# it, that test is skipped and names the packages).
if [ "$(id -u)" = 0 ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
  echo "[test] installing Debian's chromium and chromium-driver for the browser test (apt)" >&2
  bash scripts/environments/apt_install.sh chromium chromium-driver ||
    echo "[test] chromium and chromium-driver could not be installed: the browser test will be skipped" >&2
fi
echo "[test] pytest: unit, contract, fault, monitoring and browser tests, then every notebook under nbval" >&2
exec bash scripts/serve/with_model_server.sh venvs/notebooks/bin/python -m pytest -p no:cacheprovider -q \
  -m "not reliability" tests --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
  notebooks "${without_docker[@]}" "$@"
