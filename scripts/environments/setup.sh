#!/usr/bin/env bash
# Creates (or brings up to date) the two Python environments:
#   venvs/serving    seldon-core 1.17.1 and the model's libraries: on Linux from the same wheelhouse as
#                    the image, on macOS from the locked macOS wheels (scripts/environments/platforms.py)
#   venvs/notebooks  JupyterLab, papermill, nbval, pytest, pandas... and this kit, installed editable
# They cannot be one (seldon-core pins prometheus-client<0.9, jupyter_server needs >=0.9); both
# install with -c constraints.txt so a model pickled in one loads in the other.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-$(command -v python3.11 || echo python3)}
platforms=scripts/environments/platforms.py
say() { echo "[setup] $*" >&2; }

"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || {
  say "$python: $("$python" --version 2>/dev/null || echo "not found")"
  say "$(python3 "$platforms" python-hint 2>/dev/null || echo "Python 3.11 is needed: set PYTHON=/path/to/python3.11")"
  exit 1; }

stamp_of() { cat "$@" | "$python" scripts/environments/content_stamp.py; }

make_env() {  # name, requirement files..., then pip arguments after --
  local name=$1; shift
  local files=() ; while [ "$1" != "--" ]; do files+=("$1"); shift; done; shift
  local dir=venvs/$name stamp
  stamp=$(stamp_of "${files[@]}" constraints.txt)
  if [ -f "$dir/.stamp-$stamp" ]; then say "$dir is up to date"; return; fi
  say "creating $dir"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade "pip>=23" >&2
  "$dir/bin/python" -m pip install --progress-bar off "$@" >&2
  touch "$dir/.stamp-$stamp"
}

# Asked of the Python 3.11 that makes the venv: it is that interpreter's machine the wheels must fit
# (on a Mac, an x86-64 Python under Rosetta is an x86-64 one).
if serving_platform=$("$python" "$platforms" local-serving); then
  wheels=$("$python" "$platforms" wheelhouse "$serving_platform")
  bash image/wheelhouse.sh "$serving_platform"
  make_env serving requirements.lock -- --no-index --find-links "$wheels" -q --require-hashes -r "$wheels/install.txt"
else
  say "no venvs/serving here (above): 'make serve' needs Docker on this machine"
fi
make_env notebooks requirements-notebooks.txt pyproject.toml -- -q -r requirements-notebooks.txt -e .

# The kit's Jupyter kernel, for any JupyterLab or editor (VS Code...) of this user, root or not:
# venvs/notebooks' Python, which imports kit, serving and DockerModel. Checked on every run, as the
# venv's stamp cannot tell whether this user has it, and installed only where missing or stale.
# On x86-64 it runs with OPENBLAS_CORETYPE=Haswell, as make does: notebook 01 then fits the
# committed models however it is started (the Makefile says why).
kernel_env=()
[ "$(uname -m)" = x86_64 ] && kernel_env=(--env OPENBLAS_CORETYPE Haswell)
# ${kernel_env[@]+...}: macOS's bash 3.2 calls an empty array unbound under set -u.
kernel_installed() {
  venvs/notebooks/bin/python - ${kernel_env[@]+"${kernel_env[@]}"} <<'PY'
import json, sys
from pathlib import Path
from jupyter_core.paths import jupyter_data_dir
try:
    kernel = json.loads(Path(jupyter_data_dir(), "kernels", "docker-model-kit", "kernel.json").read_text())
except (OSError, ValueError):
    sys.exit(1)
wanted_env = dict(zip(sys.argv[2::3], sys.argv[3::3]))
sys.exit(kernel.get("argv", [None])[0] != sys.executable or kernel.get("display_name") != "docker-model kit"
         or kernel.get("env", {}) != wanted_env)
PY
}
if ! kernel_installed; then
  say "installing the Jupyter kernel docker-model-kit (\"docker-model kit\") for user $(id -un)"
  venvs/notebooks/bin/python -m ipykernel install --user --name docker-model-kit --display-name "docker-model kit" \
    ${kernel_env[@]+"${kernel_env[@]}"} >&2
fi
# JupyterLab 4.3 asks on its first start whether to fetch Jupyter's news from the internet; the kit's
# lab answers no beforehand (a default of venvs/notebooks only: a user's own setting still wins).
lab_overrides=venvs/notebooks/share/jupyter/lab/settings/overrides.d
mkdir -p "$lab_overrides"
echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
  >"$lab_overrides/docker-model-kit.json"
