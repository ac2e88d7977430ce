"""What the proposed changes to the kit's serving path would buy, measured before anyone edits it.

    venvs/notebooks/bin/python bench/serving_variants.py [--seconds 5] [--only a,b]

Serves this repository's DockerModel from venvs/serving (seldon-core-microservice, gunicorn, port
18100) several ways, each from a scratch copy of the serving files with a variant applied, and runs
the same wrk load as bench/run.py (one-row predictions, and 10,000-row batches):
  as-is          the files as they are, GUNICORN_WORKERS=2, GUNICORN_THREADS=1 (the image's defaults)
  gthread        GUNICORN_THREADS=2: gunicorn's threaded worker, which keeps connections alive
  no-ipc         SeldonMetrics.update returns at once for an empty list, and DockerModel.metrics()
                 returns [] after a prediction (only feedback changes the figures): no Manager IPC
                 on the prediction path
  one-parse      request_guard hands the JSON it parsed to Flask's request cache, so seldon's
                 get_json() does not parse the body a second time
  warning-logs   SELDON_LOG_LEVEL=WARNING
  no-ipc+gthread, no-ipc+one-parse, all (no-ipc + one-parse + gthread): combinations
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

ROOT = bench.ROOT
PORT = 18100

NO_IPC_SITECUSTOMIZE = '''
import seldon_core.metrics as _m
_update = _m.SeldonMetrics.update
def _update_unless_empty(self, custom_metrics, method):
    if custom_metrics:
        return _update(self, custom_metrics, method)
_m.SeldonMetrics.update = _update_unless_empty
'''

NO_IPC_MODEL_PATCH = '''

# --- variant no-ipc: a prediction changes no figure, so it reports none
_predict, _metrics = DockerModel.predict, DockerModel.metrics
def _predict_flagged(self, X, features_names=None, meta=None):
    self._request.after_predict = True
    return _predict(self, X, features_names, meta)
def _feedback_flagged(self, *a, **k):
    self._request.after_predict = False
    return _send_feedback(self, *a, **k)
def _metrics_unless_predict(self):
    if getattr(self._request, "after_predict", False):
        self._request.after_predict = False
        return []
    return _metrics(self)
_send_feedback = DockerModel.send_feedback
DockerModel.predict, DockerModel.send_feedback, DockerModel.metrics = _predict_flagged, _feedback_flagged, _metrics_unless_predict
'''

# the line of request_guard._body that parses the body: `<name> = json.loads(text, ...)`
ONE_PARSE = re.compile(r"^(\s*)(\w+) = json\.loads\(text, parse_constant=_reject_constant\)\n", re.M)

VARIANTS = {
    "as-is": {},
    "gthread": {"env": {"GUNICORN_THREADS": "2"}},
    "no-ipc": {"no_ipc": True},
    "one-parse": {"one_parse": True},
    "warning-logs": {"env": {"SELDON_LOG_LEVEL": "WARNING"}},
    "no-ipc+gthread": {"no_ipc": True, "env": {"GUNICORN_THREADS": "2"}},
    "no-ipc+one-parse": {"no_ipc": True, "one_parse": True},
    "all": {"no_ipc": True, "one_parse": True, "env": {"GUNICORN_THREADS": "2"}},
}


def prepare(workdir, variant):
    d = Path(workdir) / variant
    d.mkdir()
    for f in ("DockerModel.py", "feedback_log.py", "request_guard.py"):
        shutil.copy(ROOT / f, d / f)
    (d / "models").symlink_to(ROOT / "models")
    spec = VARIANTS[variant]
    env = {"FEEDBACK_DB": str(d / "feedback.sqlite"), "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "1",
           **spec.get("env", {})}
    if spec.get("no_ipc"):
        (d / "sitecustomize.py").write_text(NO_IPC_SITECUSTOMIZE)
        with open(d / "DockerModel.py", "a") as f:
            f.write(NO_IPC_MODEL_PATCH)
        env["PYTHONPATH"] = str(d)
    if spec.get("one_parse"):
        text = (d / "request_guard.py").read_text()
        text, n = ONE_PARSE.subn(lambda m: m.group(0) + f"{m.group(1)}request._cached_json = ({m.group(2)}, "
                                 f"{m.group(2)})  # variant one-parse: seldon's get_json() reuses it\n", text)
        assert n == 1, "request_guard.py changed: update the one-parse variant"
        (d / "request_guard.py").write_text(text)
    argv = [str(bench.SERVING_VENV / "bin" / "seldon-core-microservice"), "DockerModel", "--service-type", "MODEL",
            "--http-port", str(PORT), "--grpc-port", str(PORT + 1), "--metrics-port", str(PORT + 2)]
    return bench.Process(variant, argv, PORT, cwd=d, env=env, predict_path="/api/v1.0/predictions",
                         extra_ports=(PORT + 1, PORT + 2), description=f"kit from venvs/serving, {variant}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--only", default=",".join(VARIANTS))
    args = ap.parse_args()
    X, y = bench.load_test_set()
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-variants-") as tmp:
        bodies = bench.write_bodies(X, tmp)
        for variant in args.only.split(","):
            server = prepare(tmp, variant)
            try:
                for p in server.ports():
                    if not bench.port_free(p):
                        raise RuntimeError(f"port {p} is in use")
                cold = bench.cold_start(server, server.payload(X[:1]), [int(v) for v in bench.server_expected(X[:1])])
                status, doc, _ = bench.post(PORT, "/api/v1.0/feedback", bench.seldon_feedback(X, y))
                assert status == 200, doc
                bench.wrk(server, bodies["seldon"][1], 2)
                single = bench.wrk(server, bodies["seldon"][1], args.seconds)
                big = bench.wrk(server, bodies["seldon"][10_000], max(args.seconds // 2, 2))
                status, doc, _ = bench.post(PORT, "/api/v1.0/feedback", bench.seldon_feedback(X[:1], y[:1]))
                out[variant] = {"cold_s": cold, "req_per_s": single["req_per_s"], "p50_ms": single["p50_us"] / 1000,
                                "p99_ms": single["p99_us"] / 1000, "errors": single["errors"] + big["errors"],
                                "rows_per_s_10k": big["req_per_s"] * 10_000,
                                "feedback_metrics": [m["key"] for m in doc["meta"].get("metrics", [])]}
                print(f"{variant:>13}: {out[variant]['req_per_s']:6.0f} req/s  p50 {out[variant]['p50_ms']:5.1f} ms  "
                      f"p99 {out[variant]['p99_ms']:5.1f} ms  10k-row batches {out[variant]['rows_per_s_10k']:8.0f} rows/s"
                      f"  errors {out[variant]['errors']}", flush=True)
            except Exception as err:  # noqa: BLE001
                print(f"{variant:>13}: FAILED {err}\n{server.logs()}", flush=True)
            finally:
                server.stop()
    Path(bench.BENCH / "variants.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
