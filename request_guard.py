"""Checks each REST prediction and feedback request before seldon-core's own parsing sees it.

seldon-core 1.17.1 answers 500 when its parsing fails (a ragged ndarray, a tensor whose values do
not fit its shape, unknown keys in a feedback message), before the model is called, so checking
inside predict() is not enough. This Flask blueprint (the wrapper registers a model's
`model_error_handler`) refuses such requests first, with a 4xx that names the problem.

It also answers valid REST feedback itself: seldon-core would convert the message to protobuf and
back in pure Python (protobuf<4 has no compiled extension for Python 3.11), which is most of the
cost of a large feedback call. The model, the metrics recorded and the response are the same.
"""
import json
import socket

from flask import Blueprint, jsonify, request
from flask.json.provider import DefaultJSONProvider

import seldon_metrics_patch
from DockerModel import BadInput, check_truth, features_from_message

MAX_BODY_BYTES = 32 * 1024 * 1024  # 10,000 rows of 30 floats is about 6 MB of JSON

PREDICTION_PATHS = {"/api/v1.0/predictions", "/api/v0.1/predictions", "/predict"}
FEEDBACK_PATHS = {"/api/v1.0/feedback", "/api/v0.1/feedback", "/send-feedback"}
FEEDBACK_KEYS = {"request", "response", "reward", "truth"}

blueprint = Blueprint("request_guard", __name__)
_served = {}


class ReusedEncoderJSONProvider(DefaultJSONProvider):
    """Flask's JSON responses, byte for byte (compact, keys sorted), from one encoder made once:
    Flask 2.2 builds a new encoder, and looks up four deprecated settings, on every response."""

    _encoder = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=DefaultJSONProvider.default)

    def dumps(self, obj, **kwargs):
        return self._encoder.encode(obj) if not kwargs else super().dumps(obj, **kwargs)

    def response(self, *args, **kwargs):
        body = self._encoder.encode(self._prepare_response_obj(args, kwargs))
        return self._app.response_class(f"{body}\n", mimetype=self.mimetype)


def _only_for_cross_origin_requests(cors_after_request):
    """flask-cors (which seldon-core installs with its defaults) works through every response; only
    a browser's cross-origin request, which carries an Origin header, needs its headers."""

    def after_request(response):
        return cors_after_request(response) if "Origin" in request.headers else response

    return after_request


@blueprint.record_once
def _tune_app(state):
    app = state.app
    app.json = ReusedEncoderJSONProvider(app)
    app.after_request_funcs[None] = [
        _only_for_cross_origin_requests(f) if getattr(f, "__name__", "") == "cors_after_request" else f
        for f in app.after_request_funcs.get(None, [])]


def blueprint_for(model):
    """The blueprint, answering feedback with `model`."""
    _served["model"] = model
    return blueprint


class RequestError(BadInput):
    def __init__(self, message, status_code=400):
        super().__init__(message)
        self.status_code = status_code


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _body():
    """The request's JSON document: a JSON body, or seldon's form field `json`."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestError(f"the body has {request.content_length} bytes, more than the limit of "
                           f"{MAX_BODY_BYTES}: send fewer rows per request", 413)
    mimetype = request.mimetype
    try:
        if mimetype == "application/json":
            text = request.get_data(cache=True)
        elif mimetype == "application/x-www-form-urlencoded":
            if set(request.form) != {"json"}:
                raise RequestError("a form-encoded request must have exactly one field, 'json', holding the "
                                   "JSON message; better, send the JSON itself as application/json", 415)
            text = request.form["json"]
        else:  # multipart too: seldon's binData/strData uploads are not this model's input
            raise RequestError(f"Content-Type must be application/json, got {mimetype or 'none'!r}", 415)
    except TimeoutError:  # keepalive_worker.STALLED_CLIENT_SECONDS without a byte of the body
        client = request.environ.get("gunicorn.socket")
        if client is not None:
            client.shutdown(socket.SHUT_RD)  # the rest of the body is not waited for: the connection ends
        raise RequestError("the body stopped arriving before its Content-Length was reached", 408) from None
    if len(text) > MAX_BODY_BYTES:
        raise RequestError(f"the body is larger than the limit of {MAX_BODY_BYTES} bytes", 413)
    try:
        body = json.loads(text, parse_constant=_reject_constant)
        if mimetype == "application/json":
            # seldon-core's get_json() then reads Flask's cache instead of parsing again.
            request._cached_json = (body, body)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise RequestError("the body nests JSON too deeply") from None
    if (b"true" if isinstance(text, bytes) else "true") in text or \
            (b"false" if isinstance(text, bytes) else "false") in text:
        _refuse_booleans(body)  # numpy would silently read true/false as 1.0/0.0
    return body


def _refuse_booleans(node, path="body"):
    if isinstance(node, bool):
        raise RequestError(f"{path} is {str(node).lower()}: features and labels must be numbers")
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "meta":
                _refuse_booleans(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_booleans(value, f"{path}[{i}]")


def check_feedback(body):
    if not isinstance(body, dict):
        raise RequestError("feedback must be a JSON object with 'request' and 'truth'")
    unknown = set(body) - FEEDBACK_KEYS
    if unknown:
        raise RequestError(f"unknown key(s) {sorted(unknown)} in the feedback: expected 'request', 'truth', "
                           "and optionally 'response' and 'reward'")
    if "request" not in body:
        raise RequestError("feedback needs 'request': the features the prediction was made on")
    rows = features_from_message(body["request"], "request")
    truth = body.get("truth")
    if not isinstance(truth, dict) or not isinstance(truth.get("data"), dict) \
            or "ndarray" not in truth["data"]:
        raise RequestError("feedback needs 'truth': {'data': {'ndarray': [one 0 or 1 label per row]}}")
    labels = check_truth(truth["data"]["ndarray"], len(rows))
    reward = body.get("reward", 0)
    if isinstance(reward, bool) or not isinstance(reward, (int, float)):
        raise RequestError(f"'reward' must be a number, got {reward!r}")
    return rows, labels, reward


def answer_feedback(model, rows, labels, reward):
    """What seldon-core's feedback route does, without its protobuf round trip."""
    model.log_feedback(rows, labels)  # checked by check_feedback
    metrics = model.metrics()
    store = seldon_metrics_patch.current()
    if store is not None:
        store.update_reward(reward)
        store.update(metrics, "feedback")
    return jsonify({"data": {"names": [], "ndarray": []}, "meta": {"metrics": metrics, "tags": model.tags()}})


@blueprint.before_app_request
def guard():
    if request.method != "POST":
        return None
    if request.path in PREDICTION_PATHS:
        _body()  # DockerModel.predict_raw checks the message itself
    elif request.path in FEEDBACK_PATHS:
        rows, labels, reward = check_feedback(_body())
        if "model" in _served:
            return answer_feedback(_served["model"], rows, labels, reward)
    return None
