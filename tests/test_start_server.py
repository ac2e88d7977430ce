"""start_server.py: what it imports beside seldon-core, and how it starts in one thread when two
fail or hang. Runs in venvs/serving, where seldon-core is, with the server's settings."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVING_PYTHON = REPO_ROOT / "venvs" / "serving" / "bin" / "python"
# as scripts/serve.sh and the image run it
SERVER_ENV = {**os.environ, "SETUPTOOLS_USE_DISTUTILS": "stdlib", "PYTHONWARNINGS": "ignore"}

pytestmark = pytest.mark.skipif(not SERVING_PYTHON.exists(), reason="no venvs/serving: run `make setup`")


def serving_python(*args, cwd=REPO_ROOT, env=None, timeout=120):
    return subprocess.run([str(SERVING_PYTHON), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**SERVER_ENV, **(env or {})})


def printed_json(code):
    """What `code`, run in venvs/serving, prints last, as JSON."""
    done = serving_python("-c", code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_model_side_is_all_that_loading_the_artifacts_imports():
    # Whatever unpickling imports beyond the second thread's modules would be imported later, in
    # one thread: models/metadata.json must name the estimators' modules.
    assert printed_json(
        "import importlib, json, sys, joblib, start_server\n"
        "for name in start_server.model_side(): importlib.import_module(name)\n"
        "before = set(sys.modules)\n"
        "for artifact in ('models/binary-lr.joblib', 'models/binary-percept.joblib'): joblib.load(artifact)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n") == []


def test_the_two_threads_share_no_module_left_to_import(tmp_path):
    shared = tmp_path / "shared.txt"
    done = serving_python("-c", f"import start_server; start_server.write_shared_imports({str(shared)!r})")
    assert done.returncode == 0, done.stderr
    names = shared.read_text().split()
    assert "numpy" in names and "asyncio" in names and "seldon_core" not in names and "sklearn" not in names
    assert printed_json(
        "import json, sys, start_server\n"
        f"shared = open({str(shared)!r}).read().split()\n"
        "for name in shared: __import__(name)\n"
        "seldon = set(start_server.modules_imported_by(start_server.SELDON_SIDE))\n"
        "model = set(start_server.modules_imported_by(start_server.model_side()))\n"
        "print(json.dumps(sorted((seldon & model) - set(sys.modules))))\n") == []


def test_both_sides_are_imported_and_a_failure_in_the_second_thread_reaches_the_first():
    done = serving_python("-c",
        "import sys, start_server\n"
        "start_server.import_in_two_threads(['numpy'], start_server.model_side())\n"
        "assert {'seldon_core.microservice', 'sklearn.linear_model._logistic'} <= set(sys.modules)\n"
        "try:\n"
        "    start_server.import_in_two_threads([], ['no_such_module_anywhere'])\n"
        "except ModuleNotFoundError as err:\n"
        "    print('raised', err.name)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["raised", "no_such_module_anywhere"]


def server_copy(tmp_path, model_module, module_source=None):
    """start_server.py in a folder of its own, with a metadata file naming `model_module`."""
    shutil.copy(REPO_ROOT / "start_server.py", tmp_path)
    (tmp_path / "shared_imports.txt").write_text("numpy\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "metadata.json").write_text(json.dumps({"models": {"m.joblib": {"module": model_module}}}))
    if module_source:
        (tmp_path / f"{model_module}.py").write_text(module_source)
    return tmp_path


def test_a_failed_start_in_two_threads_starts_again_in_one(tmp_path):
    # The second thread fails: the process execs itself, importing in one thread, and goes on
    # with seldon-core-microservice's own arguments.
    done = serving_python("start_server.py", "--help", cwd=server_copy(tmp_path, "no_such_module"))
    assert "importing in two threads failed (ModuleNotFoundError" in done.stderr
    assert "starting again, importing in one thread" in done.stderr
    assert done.returncode == 0, done.stderr
    assert "usage: seldon-core-microservice" in done.stdout and "interface_name" in done.stdout


def test_a_hung_start_in_two_threads_starts_again_in_one(tmp_path):
    folder = server_copy(tmp_path, "hangs_on_import", "import time\ntime.sleep(600)\n")
    done = serving_python("start_server.py", "--help", cwd=folder, env={"START_SERVER_IMPORT_TIMEOUT": "3"}, timeout=60)
    assert "importing in two threads had not finished after 3 s; starting again" in done.stderr
    assert done.returncode == 0, done.stderr
    assert "usage: seldon-core-microservice" in done.stdout


def test_pkg_resources_is_loaded_only_when_one_of_its_names_is_used():
    # gunicorn.util imports it at the top; nothing the server imports may use it then (here the
    # server is started with --help: seldon-core imported, its arguments parsed). A name looked up
    # through gunicorn's reference loads the real module, which takes the stand-in's place.
    assert printed_json(
        "import atexit, json, sys, start_server\n"
        "def report():\n"
        "    import gunicorn.util\n"
        "    before = type(sys.modules['pkg_resources']).__name__, [m for m in sys.modules if m.startswith('pkg_resources')]\n"
        "    version = gunicorn.util.pkg_resources.get_distribution('gunicorn').version\n"
        "    after = sys.modules['pkg_resources']\n"
        "    print(json.dumps([before, version, type(after).__name__, after.__file__.endswith('pkg_resources/__init__.py')]))\n"
        "atexit.register(report)\n"
        "start_server.main(['--help'])\n") \
        == [["DeferredModule", ["pkg_resources"]], "20.1.0", "module", True]
