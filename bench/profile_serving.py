"""Where one single-row prediction of this kit spends its time, inside one worker process.

    venvs/serving/bin/python bench/profile_serving.py [N]

Builds the same Flask app seldon-core-microservice serves (seldon_core.wrapper.get_rest_microservice
with the kit's DockerModel, its request guard and a SeldonMetrics), drives N one-row predictions
through Flask's test client (no sockets, no gunicorn), and reports:
  - the cost per request of the whole wrapper path, and a cProfile breakdown of it;
  - microbenchmarks of its parts taken one by one (each timed alone, same inputs).
The HTTP server's own share (gunicorn sync worker: accept, parse, one connection per request)
is what `bench/run.py` shows between the floor app and a bare in-process call.
"""
import cProfile
import io
import json
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000

tmp = tempfile.mkdtemp(prefix="bench-profile-")
os.environ["FEEDBACK_DB"] = os.path.join(tmp, "feedback.sqlite")

import numpy as np  # noqa: E402
from seldon_core import seldon_methods  # noqa: E402
from seldon_core.metrics import SeldonMetrics  # noqa: E402
from seldon_core.wrapper import get_rest_microservice  # noqa: E402

from DockerModel import DockerModel, features_from_message  # noqa: E402
from kit.training import load_test_set  # noqa: E402

# As seldon-core-microservice sets it up: root logger at INFO (SELDON_LOG_LEVEL's default).
logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"))

X, y = load_test_set()
row = X[:1].tolist()
body = json.dumps({"data": {"ndarray": row}})
model = DockerModel()
model.load()
metrics = SeldonMetrics()
app = get_rest_microservice(model, metrics)
client = app.test_client()


def per_call(f, n):
    f()
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n * 1e6


def request():
    r = client.post("/api/v1.0/predictions", data=body, content_type="application/json")
    assert r.status_code == 200, r.data


def main():
    results = {}
    # feed some feedback first, as a served model would have (the SQLite reads are then real)
    model.send_feedback(X, None, 0, y)
    results["whole wrapper path (Flask test client)"] = per_call(request, N)

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(N):
        request()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(45)

    doc = json.loads(body)
    arr = np.asarray(row)
    parts = {
        "json.loads of the body": lambda: json.loads(body),
        "DockerModel.features_from_message (checks on the parsed body)": lambda: features_from_message(doc),
        "DockerModel.predict (check_features + LogisticRegression.predict)": lambda: model.predict(arr),
        "LogisticRegression.predict alone": lambda: model.model.predict(arr),
        "DockerModel.metrics() (2 SQLite reads: totals, pending exports)": model.metrics,
        "SeldonMetrics.update(8 metrics) (6 Manager round trips: lock, get, unlock, lock, set, unlock)":
            lambda: metrics.update(model.metrics(), "predict"),
        "SeldonMetrics.update([]) (the runtime-metrics call: the same 6 round trips)":
            lambda: metrics.update([], "predict"),
        "seldon_core.seldon_methods.predict (dict in, dict out; metrics included)":
            lambda: seldon_methods.predict(model, doc, metrics),
    }
    for name, f in parts.items():
        results[name] = per_call(f, max(N // 3, 300))
    width = max(map(len, results))
    print(f"per one-row prediction, in one process ({N} requests; microseconds):")
    for name, us in results.items():
        print(f"  {name:<{width}} {us:8.1f}")
    print("\ncProfile of the whole path, by cumulative time (top 45):")
    print(s.getvalue())


if __name__ == "__main__":
    main()
