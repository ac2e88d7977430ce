#!/usr/bin/env bash
# Creates (or brings up to date) the two Python environments:
#   venvs/serving    seldon-core 1.17.1 and the model's libraries, from the same wheelhouse as the image
#   venvs/notebooks  JupyterLab, papermill, nbval, pytest, pandas... and this kit, installed editable
# They cannot be one (seldon-core pins prometheus-client<0.9, jupyter_server needs >=0.9); both
# install with -c constraints.txt so a model pickled in one loads in the other.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
say() { echo "[setup] $*" >&2; }

"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  say "Python 3.11 is needed (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11"; exit 1; }

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

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

bash image/wheelhouse.sh
make_env serving requirements.lock -- --no-index --find-links build/wheels -q --require-hashes -r build/wheels/install.txt
make_env notebooks requirements-notebooks.txt pyproject.toml -- -q -r requirements-notebooks.txt -e .
