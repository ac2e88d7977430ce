"""The floor: the least a Python HTTP model server can do per request (WSGI, json + predict).

    venvs/serving/bin/gunicorn -w 2 --chdir bench floor_app:app

POST any path with {"data": {"ndarray": [[30 floats], ...]}}; answers {"data": {"ndarray": [labels]}}.
No validation, no metrics, no logging: what is left is HTTP parsing, JSON and the model itself.
"""
import json
import os

import joblib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = joblib.load(os.environ.get("MODEL_PATH", os.path.join(HERE, "..", "models", "binary-lr.joblib")))
MODEL.predict(np.zeros((1, 30)))  # warm


def app(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        X = np.asarray(body["data"]["ndarray"], dtype=np.float64)
        out = json.dumps({"data": {"ndarray": MODEL.predict(X).tolist()}}).encode()
        status = "200 OK"
    except Exception as err:  # noqa: BLE001 - a benchmark floor, not a server to copy
        out, status = json.dumps({"error": str(err)}).encode(), "400 Bad Request"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
