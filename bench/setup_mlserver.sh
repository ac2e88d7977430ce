#!/usr/bin/env bash
# venvs/mlserver: MLServer 1.7.1 + mlserver-sklearn 1.7.1, with the kit's scikit-learn/numpy/joblib
# (constraints.txt) so that models/binary-lr.joblib unpickles as trained. Idempotent.
# uvloop<0.22: from 0.22 uvloop's get_event_loop() raises when no loop is set, which kills every
# MLServer inference-pool worker at start (mlserver/parallel/worker.py _ignore_signals), so the
# default parallel_workers>=1 cannot load any model ("There is no current event loop").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=venvs/mlserver
stamp=$venv/.done-$(cat bench/setup_mlserver.sh constraints.txt | sha256sum | cut -c1-16)
[ -f "$stamp" ] && exit 0
echo "[mlserver] creating $venv (MLServer 1.7.1, mlserver-sklearn 1.7.1)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -c constraints.txt \
  mlserver==1.7.1 mlserver-sklearn==1.7.1 scikit-learn==1.5.2 numpy==1.26.4 joblib==1.4.2 'uvloop<0.22'
"$venv/bin/python" - <<'PY'
import joblib, sklearn, numpy, mlserver
m = joblib.load("models/binary-lr.joblib")
print(f"[mlserver] mlserver {mlserver.__version__}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}: "
      f"{type(m).__name__} loads", flush=True)
PY
touch "$stamp"
