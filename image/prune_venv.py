"""The image's environment, slimmed: what the model server never loads goes, then everything it
does load is imported and the server is called, and bytecode is compiled for what stays. Run by the
Dockerfile's first stage, at the optimisation level the server runs with:

    PYTHONOPTIMIZE=2 /opt/venv/bin/python prune_venv.py VENV APP SERVING_MODULES

1. removes PRUNE (about 40% of the environment) and the packages' tests, caches and build files;
2. checks: imports every module of SERVING_MODULES, loads both artifacts and serves them through
   seldon-core's REST, metrics and gRPC entry points (a prune that breaks the server fails here);
3. compiles bytecode for the modules the server imports, from the environment, from the standard
   library (under /slim/stdlib, for the serving stage to copy over its bytecode-free base: compiling
   them at every start cost 0.7 s) and from APP; writes APP/shared_imports.txt (serving.tuning.fast_start).

What the server loads was traced with image/trace_image.py (`make trace-image`) on the unpruned
image (every REST and gRPC path, health, metadata, metrics, the bad-request corpus, a worker
replaced, a graceful stop; the union over all its processes). SERVING_MODULES
(image/serving_modules.txt) is every module the trace saw imported that imports in the unpruned
image. Pruning refuses to remove anything on that list, and the check imports all of it.

Removal works on whole sub-packages and whole distributions, never on single modules inside a
package that is used (those may be imported lazily, on a path the trace did not take), with two
exceptions for files that are test-only by name.
"""
import compileall
import glob
import os
import shutil
import subprocess
import sys

# Relative to site-packages; globs must match something (a version bump must update the list).
PRUNE = {
    # Declared by seldon-core 1.17.1 as a security floor, imported by nothing it serves with.
    "cryptography": ["cryptography", "cryptography-*.dist-info"],
    # Only needed by cryptography.
    "cffi, pycparser": ["cffi", "_cffi_backend.*.so", "cffi-*.dist-info", "pycparser", "pycparser-*.dist-info"],
    # The Jaeger tracing stack: imported only with `--tracing` / TRACING=1, which this kit does not
    # use (there is no Jaeger agent); with it the server now stops at start with an ImportError.
    "tracing": ["tornado", "tornado-*.dist-info", "thrift", "thrift-*.dist-info", "jaeger_client",
                "jaeger_client-*.dist-info", "threadloop", "threadloop-*.dist-info", "opentracing",
                "opentracing-*.dist-info", "flask_opentracing", "flask_opentracing-*.dist-info",
                "grpc_opentracing", "grpcio_opentracing-*.dist-info"],
    # HTTP client libraries: used by seldon-core's client (seldon_client, batch_processor), not by
    # its server. (idna stays: jsonschema's format checker imports it.)
    "requests": ["requests", "requests-*.dist-info", "urllib3", "urllib3-*.dist-info", "certifi",
                 "certifi-*.dist-info", "charset_normalizer", "charset_normalizer-*.dist-info"],
    # setuptools itself: gunicorn 20.1 imports only pkg_resources, which loads its vendored
    # packages from setuptools/_vendor (kept). `import setuptools` is not possible in the image;
    # without its distutils hook (distutils-precedence.pth, which cost every start 0.4 s),
    # `distutils` is always the standard library's.
    "setuptools": ["setuptools/*", "_distutils_hack", "distutils-precedence.pth"] + [
        f"setuptools/_vendor/{name}*" for name in (  # what setuptools vendors for itself, not pkg_resources
            "wheel", "inflect", "typeguard", "tomli", "autocommand", "importlib_metadata", "zipp")],
    # numpy's build tools (distutils, f2py), its array API preview, PyInstaller hooks.
    "numpy": ["numpy/distutils", "numpy/f2py", "numpy/array_api", "numpy/_pyinstaller",
              "../../../bin/f2py"],
    # scipy sub-packages that nothing imports (sklearn's linear models import linalg, optimize,
    # sparse, special, stats; stats imports interpolate, integrate, spatial, ndimage, fft, constants).
    "scipy": ["scipy/io", "scipy/signal", "scipy/misc", "scipy/cluster", "scipy/odr", "scipy/fftpack",
              "scipy/datasets"],
    # scikit-learn sub-packages that neither the served LogisticRegression nor the Perceptron
    # (models/) import, in loading, predicting or scoring.
    "scikit-learn": ["sklearn/" + name for name in (
        "cluster", "ensemble", "neighbors", "tree", "datasets", "decomposition", "manifold",
        "feature_extraction", "gaussian_process", "feature_selection", "covariance", "inspection",
        "neural_network", "impute", "mixture", "compose", "semi_supervised", "cross_decomposition",
        "experimental", "_build_utils")],
    # Test-only extension modules (numpy's SIMD test harness; scipy's test helpers) and joblib's
    # test suite (named `test`).
    "test-only files": ["numpy/core/_simd.*.so", "scipy/special/_test_internal.*", "scipy/_lib/_test_*.so",
                        "scipy/integrate/_test_*.so", "scipy/ndimage/_ctest.*.so", "joblib/test"],
}
# Byte-identical copies of a library, under the same SONAME: the dynamic loader never opens
# scipy's, because numpy's (loaded by `import numpy`, which scipy/__init__ runs first) already
# answers that name; they were never mapped in the trace. Each becomes a symlink to numpy's copy,
# so that the name still resolves in any order. Checked byte for byte.
SAME_FILES = {
    "scipy.libs/libgfortran-040039e1.so.5.0.0": "numpy.libs/libgfortran-040039e1.so.5.0.0",
    "scipy.libs/libquadmath-96973f99.so.0.0.0": "numpy.libs/libquadmath-96973f99.so.0.0.0",
}
# Never removed by a glob above.
KEEP = {"setuptools/_vendor"}
# The packages' own test suites, and bytecode compiled before pruning (compiled again after).
TEST_AND_CACHE_DIRS = {"tests", "__pycache__"}
# Files only a build of other extensions reads: C headers, Cython declarations, sources, templates,
# static libraries, type stubs.
BUILD_ONLY_FILES = (".h", ".pxd", ".pxi", ".pyx", ".c", ".cpp", ".tp", ".a", ".pyi", "meson.build")


# The article's request row.
ROW = [13.4, 20.52, 88.64, 556.7, 0.1106, 0.1469, 0.1445, 0.08172, 0.2116, 0.07325, 0.3906, 0.9306, 3.093,
       33.67, 0.005414, 0.02265, 0.03452, 0.01334, 0.01705, 0.004005, 16.41, 29.66, 113.3, 844.4, 0.1574,
       0.3856, 0.5106, 0.2051, 0.3585, 0.1109]


def size(path):
    if os.path.isfile(path) or os.path.islink(path):
        return os.lstat(path).st_size
    return sum(os.lstat(os.path.join(root, f)).st_size for root, _, files in os.walk(path) for f in files)


def module_of(site, path):
    rel = os.path.relpath(path, site)
    name = rel.split(".cpython-")[0].split(".abi3")[0]
    return name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def prune(site, serving):
    total = 0
    for group, patterns in PRUNE.items():
        removed = 0
        for pattern in patterns:
            paths = glob.glob(os.path.join(site, pattern))
            if not paths:
                sys.exit(f"prune_venv: {pattern!r} ({group}) matches nothing: update the list")
            for path in paths:
                if os.path.relpath(path, site) in KEEP:
                    continue
                mod = module_of(site, path)
                used = [m for m in serving if m == mod or m.startswith(mod + ".")]
                if used:
                    sys.exit(f"prune_venv: {path} holds {used[:3]}, which the server imports")
                removed += size(path)
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
        print(f"prune_venv: {group}: {removed / 1e6:.1f} MB")
        total += removed
    removed = 0
    for root, dirs, files in os.walk(site):
        for d in [d for d in dirs if d in TEST_AND_CACHE_DIRS]:
            removed += size(os.path.join(root, d))
            shutil.rmtree(os.path.join(root, d))
            dirs.remove(d)
        for f in files:
            if f.endswith(BUILD_ONLY_FILES):
                path = os.path.join(root, f)
                removed += size(path)
                os.remove(path)
    print(f"prune_venv: tests, caches, headers, sources, stubs: {removed / 1e6:.1f} MB")
    total += removed
    removed = 0
    for copy, original in SAME_FILES.items():
        copy, original = os.path.join(site, copy), os.path.join(site, original)
        with open(copy, "rb") as a, open(original, "rb") as b:
            if a.read() != b.read():
                sys.exit(f"prune_venv: {copy} differs from {original}: update SAME_FILES")
        removed += size(copy)
        os.remove(copy)
        os.symlink(os.path.relpath(original, os.path.dirname(copy)), copy)
    print(f"prune_venv: duplicate libraries: {removed / 1e6:.1f} MB")
    print(f"prune_venv: {(total + removed) / 1e6:.1f} MB removed")
    compile_serving(site, serving)


def compile_modules(roots, serving, dest=""):
    """Bytecode for the modules of `serving` found under `roots`, at the path Python looks for it,
    below `dest` ("": in place). A module imported on another path is compiled in memory when it
    is, the image being read-only."""
    import importlib.util
    import py_compile

    compiled = 0
    for name in serving:
        rel = name.replace(".", "/")
        for root in roots:
            for source in (os.path.join(root, rel + ".py"), os.path.join(root, rel, "__init__.py")):
                if os.path.isfile(source):
                    cfile = dest + importlib.util.cache_from_source(source)
                    py_compile.compile(source, cfile=cfile, doraise=True)
                    compiled += 1
    return compiled


def compile_serving(site, serving):
    """Bytecode for the modules the server imports from the virtual environment."""
    roots = [site, os.path.join(site, "setuptools", "_vendor")]  # pkg_resources's vendored packages
    compiled = compile_modules(roots, serving)
    print(f"prune_venv: bytecode for the {compiled} modules the server imports from here")


def stdlib_bytecode(dest, serving):
    """Bytecode for the standard-library modules the server imports, written under `dest`, for the
    serving stage to copy over its (bytecode-free) base: compiling them at every start cost 0.7 s."""
    import sysconfig

    compiled = compile_modules([sysconfig.get_paths()["stdlib"]], serving, dest)
    print(f"prune_venv: bytecode for the {compiled} standard-library modules the server imports")


def check(serving):
    """Imports every module the traced server imported, then serves with both artifacts the image
    ships through seldon-core's own REST and gRPC entry points."""
    import importlib

    # In rounds: pkg_resources puts setuptools/_vendor on sys.path for the modules vendored there.
    pending, failed = serving, []
    while True:
        failed, errors = [], []
        for name in pending:
            try:
                importlib.import_module(name)
            except Exception as err:  # noqa: BLE001 - every failure is reported
                failed.append(name)
                errors.append(f"{name}: {type(err).__name__}: {err}")
        if not failed or len(failed) == len(pending):
            break
        pending = failed
    if failed:
        sys.exit("prune_venv --check: the server imports these, and they no longer import:\n  "
                 + "\n  ".join(errors))

    import numpy as np

    from serving import tuning

    tuning.apply("on")  # as the image serves by default
    from seldon_core import wrapper
    from seldon_core.metrics import SeldonMetrics

    from DockerModel import DockerModel
    from serving.artifacts import DEFAULT_MODEL_PATH
    from serving.validation import N_FEATURES

    def expect(ok, what):  # not assert: this runs at -OO, which strips asserts
        if not ok:
            sys.exit(f"prune_venv --check: {what}")

    X = np.array([ROW, np.zeros(N_FEATURES)])
    models_dir = os.path.dirname(DEFAULT_MODEL_PATH)
    for artifact in sorted(f for f in os.listdir(models_dir) if f.endswith(".joblib")):
        model = DockerModel(os.path.join(models_dir, artifact))
        predicted = model.predict(X.tolist())
        model.send_feedback(X.tolist(), None, 0, predicted.tolist())
        scores = model.scores
        expect(scores.TP + scores.TN == 2, f"{artifact}: its own predictions fed back scored {scores}")
        print(f"prune_venv --check: {artifact} predicts {predicted.tolist()[:8]}")
    metrics = SeldonMetrics()
    try:
        app = wrapper.get_rest_microservice(model, metrics)
        client = app.test_client()
        row = X[:1].tolist()
        for path, body, expected in (
                ("/api/v1.0/predictions", {"data": {"ndarray": row}}, 200),
                ("/api/v1.0/feedback", {"request": {"data": {"ndarray": row}},
                                        "truth": {"data": {"ndarray": [int(predicted[0])]}}}, 200),
                ("/api/v1.0/predictions", {"data": {"ndarray": [row[0][:29]]}}, 400)):
            status = client.post(path, json=body).status_code
            expect(status == expected, f"POST {path} answered {status}, not {expected}")
        for path in ("/health/ping", "/health/status", "/metadata"):
            status = client.get(path).status_code
            expect(status == 200, f"GET {path} answered {status}")
        exposed = wrapper.get_metrics_microservice(metrics).test_client().get("/metrics").data
        expect(b"feedback_outcomes" in exposed, "/metrics has no feedback_outcomes")
        server = wrapper.get_grpc_server(model, metrics)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        import grpc
        from google.protobuf import json_format
        from seldon_core.proto import prediction_pb2, prediction_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = json_format.ParseDict({"data": {"ndarray": row}}, prediction_pb2.SeldonMessage())
            answer = prediction_pb2_grpc.ModelStub(channel).Predict(request, timeout=10)
            expect(len(answer.data.ndarray) == 1, f"gRPC Predict answered {answer}")
        server.stop(0)
    finally:
        metrics._manager.shutdown()
    print(f"prune_venv --check: {len(serving)} modules import; REST, metrics and gRPC answer")


def read_modules(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def main(venv, app, modules_file):
    serving = read_modules(modules_file)
    site = os.path.join(venv, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")
    prune(site, serving)
    python = os.path.join(venv, "bin", "python")
    env = {**os.environ, "PYTHONPATH": app, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([python, "-W", "ignore::UserWarning", os.path.abspath(__file__), "--check", modules_file],
                   cwd=app, env=env, check=True)
    stdlib_bytecode(STDLIB_BYTECODE, serving)
    compileall.compile_dir(app, quiet=1)
    subprocess.run([python, "-m", "serving.tuning.fast_start", "--write-shared-imports"], cwd=app, check=True)


STDLIB_BYTECODE = "/slim/stdlib"

if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(read_modules(sys.argv[2]))
    else:
        main(*sys.argv[1:])
