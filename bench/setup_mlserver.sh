#!/usr/bin/env bash
# venvs/mlserver: MLServer 1.7.1 on the host, for its protobuf classes (bench/grpc_requests.py builds
# and decodes its gRPC messages with them) and to check that the kit's model loads under it; the
# server `make bench` measures is its image (bench/build_mlserver_image.sh). The same
# bench/mlserver/requirements.txt, with the kit's constraints.txt. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=venvs/mlserver
stamp=$venv/.done-$(cat bench/setup_mlserver.sh bench/mlserver/requirements.txt constraints.txt | sha256sum | cut -c1-16)
[ -f "$stamp" ] && exit 0
echo "[mlserver] creating $venv (MLServer 1.7.1, mlserver-sklearn 1.7.1)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -c constraints.txt \
  -r bench/mlserver/requirements.txt
"$venv/bin/python" - <<'PY'
import joblib, sklearn, numpy, mlserver
m = joblib.load("models/binary-lr.joblib")
print(f"[mlserver] mlserver {mlserver.__version__}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}: "
      f"{type(m).__name__} loads", flush=True)
PY
touch "$stamp"
