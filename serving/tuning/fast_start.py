"""A shorter cold start: the model's libraries imported in a second thread while the first imports
seldon-core's, with the collector off; pkg_resources only if one of its names is used.

Importing is most of a cold start: seldon-core, Flask and gRPC on one side, scikit-learn and SciPy
on the other, each about as long, and independent. Where the image's files are read through a
user-space daemon (fuse-overlayfs, as on this kit's Docker engines), much of an import is spent
waiting for file reads, which release the interpreter lock: one thread runs while the other waits.

Two threads must never initialise the same module at once: Python's import locks can then
deadlock (seen here with ssl and http.client). So the first thread imports, alone, every module
that both sides import (shared_imports.txt, listed in the image's own environment when it is
built: `python3 -m serving.tuning.fast_start --write-shared-imports`); the two sides then share no
module left to import. Without that list (the local serving venv), nothing is imported ahead. If
the import in two threads fails, or has not finished after FAST_START_IMPORT_TIMEOUT seconds
(30), the process starts again (`exec`), importing in one thread, and says so.

pkg_resources, which gunicorn 20.1 imports first thing for the worker classes named by entry point
("egg:..."), which seldon-core never names, is imported only if one of its names is used: left to
import, it scans every installed distribution (0.13 s of a start).
"""
import gc
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import types

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the app
METADATA = os.path.join(HERE, "models", "metadata.json")
SHARED_IMPORTS = os.path.join(HERE, "shared_imports.txt")
SELDON_SIDE = ["seldon_core.microservice"]
# Names in sys.modules that are not modules to import: the running script, and multiprocessing's alias of it.
NOT_IMPORTABLE = {"__main__", "__mp_main__"}
DEFERRED = ["pkg_resources"]
ONE_THREAD = "FAST_START_ONE_THREAD"
IMPORT_TIMEOUT = "FAST_START_IMPORT_TIMEOUT"


def model_side(metadata_path=METADATA):
    """joblib and the modules of the estimator classes the artifacts unpickle (models/metadata.json)."""
    with open(metadata_path) as f:
        models = json.load(f)["models"]
    return ["joblib"] + sorted({model["module"] for model in models.values()})


def modules_imported_by(names):
    """Every module a fresh interpreter of this environment has loaded once it has imported `names`."""
    code = "import importlib, json, sys\nfor n in sys.argv[1:]: importlib.import_module(n)\nprint(json.dumps(list(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, check=True, cwd=HERE)
    return json.loads(done.stdout.splitlines()[-1])


def write_shared_imports(path=SHARED_IMPORTS):
    seldon = set(modules_imported_by(SELDON_SIDE))
    shared = [m for m in modules_imported_by(model_side()) if m in seldon and m not in NOT_IMPORTABLE]
    with open(path, "w") as f:
        f.write("\n".join(shared) + "\n")
    print(f"fast_start: {len(shared)} modules both sides import -> {path}")


class DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module not imported yet, and imports it when one of its names is
    first looked up. `import name` finds it in sys.modules and reads only `__spec__` (a real spec,
    found without running the module), so importing it does not load it; `from name import x` and
    `name.x` do."""

    def __init__(self, spec):
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loaded = None
        self.__lock = threading.Lock()

    def __getattr__(self, attr):  # called only for names the stand-in lacks
        if attr.startswith("_DeferredModule__"):
            raise AttributeError(attr)
        with self.__lock:
            if self.__loaded is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                self.__loaded = importlib.import_module(self.__name__)
        return getattr(self.__loaded, attr)


def defer(names):
    for name in names:
        if name not in sys.modules:
            spec = importlib.util.find_spec(name)
            if spec is not None:
                sys.modules[name] = DeferredModule(spec)


def import_in_two_threads(shared, model_modules):
    """Imports `shared` here, then `model_modules` in a second thread while seldon-core's are
    imported in this one; raises the first failure of either."""
    for name in shared:
        importlib.import_module(name)
    failures = []

    def import_model_side():
        try:
            for name in model_modules:
                importlib.import_module(name)
        except BaseException as err:  # noqa: BLE001 - raised again in the first thread
            failures.append(err)

    second = threading.Thread(target=import_model_side, name="import-model-side", daemon=True)
    second.start()
    try:
        for name in SELDON_SIDE:
            importlib.import_module(name)
    finally:
        second.join()
    if failures:
        raise failures[0]


def start_again_in_one_thread(why):
    print(f"serving.tuning.fast_start: importing in two threads {why}; starting again, importing in one thread",
          file=sys.stderr, flush=True)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, ONE_THREAD: "1"})


def install():
    defer(DEFERRED)
    if os.environ.get(ONE_THREAD) == "1" or not os.path.exists(SHARED_IMPORTS):
        return
    with open(SHARED_IMPORTS) as f:
        shared = f.read().split()
    timeout = float(os.environ.get(IMPORT_TIMEOUT, "30"))
    watchdog = threading.Timer(timeout, start_again_in_one_thread, [f"had not finished after {timeout:g} s"])
    watchdog.daemon = True
    watchdog.start()
    # The imports leave over 100,000 tracked objects that all live on, and the collector ran 290
    # times over them while they were made, to free about a thousand (0.2 s of a start here).
    # Frozen, later collections skip them, so the forked workers leave their pages shared.
    gc.disable()
    try:
        import_in_two_threads(shared, model_side())
    except Exception as err:  # noqa: BLE001 - any failure: start afresh, in one thread
        start_again_in_one_thread(f"failed ({type(err).__name__}: {err})")
    finally:
        watchdog.cancel()
        gc.enable()
        gc.freeze()


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-shared-imports"]:
        sys.exit("usage: python3 -m serving.tuning.fast_start --write-shared-imports")
    write_shared_imports()
