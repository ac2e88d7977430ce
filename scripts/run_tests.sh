#!/usr/bin/env bash
# The test suite: unit, contract, fault and monitoring tests, then nbval over every notebook,
# against a served model (scripts/with_model_server.sh starts what is needed and stops it again).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "[test] pytest: unit, contract, fault and monitoring tests, then every notebook under nbval" >&2
exec bash scripts/with_model_server.sh venvs/notebooks/bin/python -m pytest -p no:cacheprovider -q \
  -m "not reliability" tests --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
  notebooks "$@"
