"""serving.tuning: the switch, the version checks, the fast_start step (what it imports beside
seldon-core, and how it starts in one thread when two fail or hang), and the steps that answer by
another way than seldon-core's (metrics_exposition, body_reads, grpc_aio, grpc_shortcut). Runs in
venvs/serving, where seldon-core is."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVING_PYTHON = REPO_ROOT / "venvs" / "serving" / "bin" / "python"
SERVER_ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "SERVING_TUNING": "on"}

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
        "import importlib, json, sys, joblib\nfrom serving.tuning import fast_start\n"
        "for name in fast_start.model_side(): importlib.import_module(name)\n"
        "before = set(sys.modules)\n"
        "for artifact in ('models/binary-lr.joblib', 'models/binary-percept.joblib'): joblib.load(artifact)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n") == []


def test_the_two_threads_share_no_module_left_to_import(tmp_path):
    shared = tmp_path / "shared.txt"
    done = serving_python("-c", f"from serving.tuning import fast_start; fast_start.write_shared_imports({str(shared)!r})")
    assert done.returncode == 0, done.stderr
    names = shared.read_text().split()
    assert "numpy" in names and "asyncio" in names and "seldon_core" not in names and "sklearn" not in names
    assert printed_json(
        "import json, sys\nfrom serving.tuning import fast_start\n"
        f"shared = open({str(shared)!r}).read().split()\n"
        "for name in shared: __import__(name)\n"
        "seldon = set(fast_start.modules_imported_by(fast_start.SELDON_SIDE))\n"
        "model = set(fast_start.modules_imported_by(fast_start.model_side()))\n"
        "print(json.dumps(sorted((seldon & model) - set(sys.modules))))\n") == []


def test_both_sides_are_imported_and_a_failure_in_the_second_thread_reaches_the_first():
    # As the image's server does: what both sides import first (with only numpy first, the two threads
    # importing scipy's modules at once hung once in three runs of make test).
    done = serving_python("-c",
        "import contextlib, sys, tempfile\nfrom serving.tuning import fast_start\n"
        "shared = tempfile.mktemp()\n"
        "with contextlib.redirect_stdout(sys.stderr):\n"
        "    fast_start.write_shared_imports(shared)\n"
        "fast_start.import_in_two_threads(open(shared).read().split(), fast_start.model_side())\n"
        "assert {'seldon_core.microservice', 'sklearn.linear_model._logistic'} <= set(sys.modules)\n"
        "try:\n"
        "    fast_start.import_in_two_threads([], ['no_such_module_anywhere'])\n"
        "except ModuleNotFoundError as err:\n"
        "    print('raised', err.name)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["raised", "no_such_module_anywhere"]


def server_copy(tmp_path, model_module, module_source=None):
    """The serving package in a folder of its own, with a metadata file naming `model_module`."""
    shutil.copytree(REPO_ROOT / "serving", tmp_path / "serving", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "shared_imports.txt").write_text("numpy\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "metadata.json").write_text(json.dumps({"models": {"m.joblib": {"module": model_module}}}))
    if module_source:
        (tmp_path / f"{model_module}.py").write_text(module_source)
    return tmp_path


def test_a_failed_start_in_two_threads_starts_again_in_one(tmp_path):
    # The second thread fails: the process execs itself, importing in one thread, and goes on
    # with seldon-core-microservice's own arguments.
    done = serving_python("-m", "serving", "--help", cwd=server_copy(tmp_path, "no_such_module"))
    assert "importing in two threads failed (ModuleNotFoundError" in done.stderr
    assert "starting again, importing in one thread" in done.stderr
    assert done.returncode == 0, done.stderr
    assert "usage: seldon-core-microservice" in done.stdout and "interface_name" in done.stdout


def test_a_hung_start_in_two_threads_starts_again_in_one(tmp_path):
    folder = server_copy(tmp_path, "hangs_on_import", "import time\ntime.sleep(600)\n")
    done = serving_python("-m", "serving", "--help", cwd=folder, env={"FAST_START_IMPORT_TIMEOUT": "3"}, timeout=60)
    assert "importing in two threads had not finished after 3 s; starting again" in done.stderr
    assert done.returncode == 0, done.stderr
    assert "usage: seldon-core-microservice" in done.stdout


def test_pkg_resources_is_loaded_only_when_one_of_its_names_is_used():
    # gunicorn.util imports it at the top; nothing the server imports may use it then (here the
    # server is started with --help: seldon-core imported, its arguments parsed). A name looked up
    # through gunicorn's reference loads the real module, which takes the stand-in's place.
    assert printed_json(
        "import atexit, json, sys\nfrom serving import __main__ as server\n"
        "def report():\n"
        "    import gunicorn.util\n"
        "    before = type(sys.modules['pkg_resources']).__name__, [m for m in sys.modules if m.startswith('pkg_resources')]\n"
        "    version = gunicorn.util.pkg_resources.get_distribution('gunicorn').version\n"
        "    after = sys.modules['pkg_resources']\n"
        "    print(json.dumps([before, version, type(after).__name__, after.__file__.endswith('pkg_resources/__init__.py')]))\n"
        "atexit.register(report)\n"
        "server.main(['--help'])\n") \
        == [["DeferredModule", ["pkg_resources"]], "20.1.0", "module", True]


def tuning_says(setting, versions=None):
    """What serving.tuning does with SERVING_TUNING=setting: the steps it applies, or why it refuses."""
    code = ("import json, sys\nfrom serving import tuning\n"
            + (f"tuning.installed_versions = lambda: {versions!r}\n" if versions is not None else "")
            + "try:\n    print(json.dumps(tuning.apply()))\n"
            "except SystemExit as refused:\n    print(json.dumps(str(refused)))\n")
    return printed_json_with({"SERVING_TUNING": setting}, code)


def printed_json_with(env, code):
    done = serving_python("-c", code, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_off_applies_nothing_and_on_every_step():
    assert tuning_says("off") == []
    from serving import tuning

    assert tuning_says("on") == list(tuning.STEPS)
    assert sorted(tuning.ABLATION_ORDER) == sorted(tuning.STEPS)


def test_named_steps_are_applied_in_their_own_order():
    assert tuning_says("keepalive_worker, metrics_store") == ["metrics_store", "keepalive_worker"]


def test_an_unknown_step_is_refused_with_the_known_ones():
    said = tuning_says("metrics_store,fast_json")
    assert "unknown step(s) ['fast_json']" in said and "keepalive_worker" in said


def test_a_step_written_for_another_version_refuses_to_start():
    versions = {"seldon_core": "1.17.1", "gunicorn": "21.2.0", "flask": "2.2.5"}
    said = tuning_says("on", versions)
    assert "written for gunicorn 20.1.0, but this environment has gunicorn 21.2.0" in said
    assert "SERVING_TUNING=off" in said
    assert tuning_says("metrics_store", versions) == ["metrics_store"]  # the others do not lean on gunicorn
    assert "flask not installed" in tuning_says("rest_shortcut", {"seldon_core": "1.17.1"})


def test_the_installed_versions_are_read_from_the_environment():
    from serving import tuning

    installed = printed_json_with({}, "import json\nfrom serving import tuning\nprint(json.dumps(tuning.installed_versions()))")
    for step in tuning.STEPS.values():
        for package, version in step[0].items():
            assert installed[tuning._normalized(package)] == version


def test_the_server_refuses_to_start_when_a_step_does_not_fit():
    done = serving_python("-m", "serving", "--help", env={"SERVING_TUNING": "metrics_store,no_such_step"})
    assert done.returncode != 0
    assert "serving.tuning: unknown step(s) ['no_such_step']" in done.stderr


def test_metrics_exposition_merges_the_series_of_a_family_under_one_help_and_type():
    from types import SimpleNamespace

    from serving.tuning.metrics_exposition import merged

    def family(name, kind, sample):
        return SimpleNamespace(name=name, type=kind, documentation="", samples=[sample])

    families = merged([family("feedback_outcomes", "counter", "tp of worker 1"), family("accuracy", "gauge", "a"),
                       family("feedback_outcomes", "counter", "tp of worker 2")],
                      {"feedback_outcomes": "the confusion matrix"})
    assert [(f.name, f.documentation, f.samples) for f in families] == [
        ("feedback_outcomes", "the confusion matrix", ["tp of worker 1", "tp of worker 2"]), ("accuracy", "", ["a"])]


def test_body_reads_return_the_same_bytes_in_fewer_reads_of_the_socket():
    """A 6 MB body arriving in uneven pieces, with bytes of the next request behind it, read through
    gunicorn's Body as stock and with body_reads: the same bytes, the rest left for the next request,
    and far fewer calls into the reader."""
    said = printed_json("""
import json, random
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import IterUnreader
random.seed(1)
body, rest = bytes(random.randrange(256) for _ in range(6_000_000)), b"POST /next"
data, pieces = body + rest, []
while data:
    n = random.randrange(1, 70_000); pieces.append(data[:n]); data = data[n:]
def read(first, size):
    reader = LengthReader(IterUnreader(list(pieces)), len(body))
    calls, read_once = [0], reader.read
    def counted(n):
        calls[0] += 1
        return read_once(n)
    reader.read = counted
    b = Body(reader)
    got = b.read(first) + b.read(size)
    return got == body, b.read() == b"", reader.unreader.read() == rest, calls[0]
stock = read(1000, None)
from serving.tuning import body_reads
body_reads.install()
tuned = read(1000, None)
print(json.dumps({"stock": stock, "tuned": tuned}))
""")
    assert said["stock"][:3] == [True, True, True]
    assert said["tuned"][:3] == [True, True, True]
    assert said["tuned"][3] * 20 < said["stock"][3], said


GRPC_CHECKS = ["plain_requests_are_answered_as_seldon_core_answers_them",
               "hand_built_requests_are_read_as_protobuf_reads_them",
               "a_model_that_writes_into_meta_is_answered_as_seldon_core_answers_it",
               "a_request_without_puid_gets_one_and_the_same_answer_otherwise",
               "the_answer_follows_the_figures_when_feedback_is_logged",
               "other_requests_take_seldon_cores_way",
               "random_rows_are_read_as_protobuf_reads_them",
               "the_aio_server_answers_and_refuses_with_gRPC_status_codes"]


@pytest.mark.parametrize("check", GRPC_CHECKS)
def test_grpc_aio_and_grpc_shortcut(check):
    """tests/grpc_shortcut_check.py: the steps' answers against seldon-core's own, and a grpc.aio
    server's status codes on loopback."""
    done = serving_python(str(REPO_ROOT / "tests" / "grpc_shortcut_check.py"), check)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.parametrize("env", [{"INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false"},
                                 {"PREDICTIVE_UNIT_ID": "classifier", "PREDICTIVE_UNIT_IMAGE": "docker-model:1.0.0"}])
def test_grpc_shortcut_answers_as_seldon_core_under_its_settings(env):
    """seldon-core's settings that change an answer's meta (no figures; a requestPath)."""
    done = serving_python(str(REPO_ROOT / "tests" / "grpc_shortcut_check.py"),
                          "plain_requests_are_answered_as_seldon_core_answers_them", env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
