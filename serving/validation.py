"""What a valid request holds: the rows (30 finite numbers each) and the true labels (0 or 1, one per
row). Anything else is refused with BadInput, answered 400 with a message that says what is wrong.
"""
import numbers

import numpy as np

try:
    from seldon_core.flask_utils import SeldonMicroserviceException as _SeldonError
except ImportError:  # the notebook environment has no seldon-core: same shape, same meaning

    class _SeldonError(Exception):
        status_code = 400

        def __init__(self, message, status_code=None, payload=None, reason="MICROSERVICE_BAD_DATA"):
            super().__init__(message)
            self.message = message
            self.status_code = status_code or self.status_code
            self.reason = reason

        def to_dict(self):
            return {"status": {"status": 1, "info": self.message, "code": -1, "reason": self.reason}}


N_FEATURES = 30
# Far beyond any of the breast-cancer measurements (the largest, a worst area, is about 4,300).
MAX_ABS_FEATURE = 1e6
MESSAGE_KEYS = {"data", "meta"}
FEEDBACK_KEYS = {"request", "response", "reward", "truth"}


class BadInput(_SeldonError):
    """A request the model refuses: answered with the message and a 4xx (400 unless said otherwise)."""

    def __init__(self, message, status_code=400):
        super().__init__(message, status_code=status_code, reason="BAD_INPUT")

    def __str__(self):
        return self.message


class CheckedRows(np.ndarray):
    """Rows check_features has passed (so have any of them, whole): not checked again."""


class CheckedLabels(np.ndarray):
    """Labels check_truth has passed: not checked again for the same number of rows."""


def _first_non_number(values):
    for i, row in enumerate(values):
        for j, v in enumerate(row if isinstance(row, (list, tuple, np.ndarray)) else [row]):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                return i, j, v
    return None


def check_features(X):
    """The input as a float array of shape (rows, 30), or BadInput saying what is wrong with it."""
    if isinstance(X, CheckedRows) and X.ndim == 2 and X.shape[0] and X.shape[1] == N_FEATURES:
        return X  # the request guard checked them: 4 ms of a 10,000-row request
    try:
        arr = np.asarray(X)
    except ValueError:
        raise BadInput("the rows have different lengths: each row must have exactly "
                       f"{N_FEATURES} numbers") from None
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        found = _first_non_number(arr.reshape(len(arr), -1).tolist() if arr.ndim >= 1 else [[X]])
        if found is not None:
            i, j, v = found
            raise BadInput(f"features must be numbers: row {i}, column {j} is {type(v).__name__} {v!r}")
        raise BadInput(f"features must be numbers, got an array of {arr.dtype}")
    if arr.size == 0:
        raise BadInput("the request has no rows")
    if arr.ndim == 1:
        raise BadInput(f"expected a list of rows, each of {N_FEATURES} numbers; got a flat list of "
                       f"{arr.shape[0]} values (wrap a single row in a list: [[...]])")
    if arr.ndim != 2:
        raise BadInput(f"expected a 2-d array (rows x {N_FEATURES} features), got {arr.ndim}-d "
                       f"with shape {arr.shape}")
    if arr.shape[1] != N_FEATURES:
        raise BadInput(f"each row must have {N_FEATURES} features, got {arr.shape[1]}")
    try:
        arr = arr.astype(np.float64)
    except OverflowError:
        raise BadInput(f"a feature is too large: values must lie within ±{MAX_ABS_FEATURE:g}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise BadInput(f"features must be finite: row {i}, column {j} is {arr[i, j]}")
    big = np.abs(arr) > MAX_ABS_FEATURE
    if big.any():
        i, j = np.argwhere(big)[0]
        raise BadInput(f"row {i}, column {j} is {arr[i, j]:g}, outside ±{MAX_ABS_FEATURE:g}")
    return arr.view(CheckedRows)


def check_truth(truth, n_rows):
    """The true labels as an int array of n_rows zeros and ones, or BadInput."""
    if isinstance(truth, CheckedLabels) and truth.ndim == 1 and len(truth) == n_rows:
        return truth
    if truth is None:
        raise BadInput("feedback needs 'truth': one label (0 or 1) per row of the request")
    arr = np.asarray(truth, dtype=object) if not isinstance(truth, np.ndarray) else truth
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise BadInput(f"truth must be a list of labels, one per row; got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise BadInput(f"truth has {arr.shape[0]} label(s) for {n_rows} row(s): give one label per row")
    labels = []
    for i, v in enumerate(arr.tolist()):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or v not in (0, 1):
            raise BadInput(f"truth labels must be 0 or 1: label {i} is {v!r}")
        labels.append(int(v))
    return np.array(labels, dtype=np.int64).view(CheckedLabels)


def features_from_message(message, where="the request"):
    """The rows of a Seldon JSON message ({'data': {'ndarray' | 'tensor': ...}}), checked, or BadInput."""
    if not isinstance(message, dict):
        raise BadInput(f"{where} must be a JSON object with a 'data' key")
    unknown = set(message) - MESSAGE_KEYS
    if unknown:
        raise BadInput(f"unknown key(s) {sorted(unknown)} in {where}: expected 'data' (and optionally 'meta')")
    if not isinstance(message.get("meta", {}), dict):
        raise BadInput(f"{where}.meta must be a JSON object")
    data = message.get("data")
    if not isinstance(data, dict):
        raise BadInput(f"{where} needs 'data': {{'ndarray': [[30 numbers], ...]}} or a 'tensor'")
    forms = {"ndarray", "tensor"} & set(data)
    if len(forms) != 1:
        raise BadInput(f"{where}.data needs exactly one of 'ndarray' or 'tensor', got keys {sorted(data)}")
    if "ndarray" in data:
        return check_features(data["ndarray"])
    tensor = data["tensor"]
    if not isinstance(tensor, dict) or not isinstance(tensor.get("shape"), list) \
            or not isinstance(tensor.get("values"), list):
        raise BadInput(f"{where}.data.tensor needs 'shape' (a list) and 'values' (a flat list)")
    shape = tensor["shape"]
    check_tensor_shape(shape, len(tensor["values"]))
    return check_features([tensor["values"][i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])])


def refuse_booleans(node, path="body"):
    """BadInput at the first true or false in a message: numpy would silently read them as 1.0 and 0.0."""
    if isinstance(node, bool):
        raise BadInput(f"{path} is {str(node).lower()}: features and labels must be numbers")
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "meta":
                refuse_booleans(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            refuse_booleans(value, f"{path}[{i}]")


def check_tensor_shape(shape, n_values):
    """BadInput unless a tensor of `shape` holding `n_values` values is some rows of features."""
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadInput(f"tensor shape must be non-negative integers, got {shape}")
    size = 1
    for d in shape:
        size *= d
    if size != n_values:
        raise BadInput(f"tensor shape {shape} holds {size} values but 'values' has {n_values}")
    if len(shape) != 2:
        raise BadInput(f"tensor shape must be [rows, 30], got {shape}")
    if size == 0:
        raise BadInput("the request has no rows")


class Unavailable(_SeldonError):
    """A call that cannot be answered now but may be later: 503 (gRPC UNAVAILABLE) with the message;
    507 (Insufficient Storage) when the feedback log cannot be written."""

    def __init__(self, message, status_code=503):
        super().__init__(message, status_code=status_code, reason="UNAVAILABLE")

    def __str__(self):
        return self.message


def _labels_in(data, what="feedback needs 'truth'"):
    """The flat list of labels in a message's data: {'ndarray': [...]} or {'tensor': {'shape', 'values'}}."""
    if isinstance(data, dict) and isinstance(data.get("ndarray"), list):
        return data["ndarray"]
    tensor = data.get("tensor") if isinstance(data, dict) else None
    if isinstance(tensor, dict) and isinstance(tensor.get("values"), list) and isinstance(tensor.get("shape"), list) \
            and tensor["shape"] in ([len(tensor["values"])], [len(tensor["values"]), 1]):
        return tensor["values"]
    raise BadInput(f"{what}: {{'data': {{'ndarray': [one 0 or 1 label per row]}}}} (or a tensor of shape [rows])")


class AnsweredPrediction:
    """What a feedback call's `response` says of its prediction: its puid, predictions, model version."""

    def __init__(self, puid, predictions, model_version):
        self.puid, self.predictions, self.model_version = puid, predictions, model_version


def check_response(response, n_rows):
    """The prediction a feedback call's `response` holds, or BadInput if it cannot be right (its
    model version is checked by the replica that made it: check_served)."""
    meta = response.get("meta") if isinstance(response.get("meta"), dict) else {}
    puid = meta.get("puid")
    if not isinstance(puid, str) or not puid:
        raise BadInput("response.meta.puid is missing: send back the response the prediction was answered with")
    predictions = _labels_in(response.get("data"), "response needs the predictions")
    if len(predictions) != n_rows:
        raise BadInput(f"the response holds {len(predictions)} prediction(s) for {n_rows} row(s) of truth")
    labels = check_truth(predictions, n_rows)  # a prediction of this model is a label: 0 or 1
    version = (meta.get("tags") or {}).get("model_version") if isinstance(meta.get("tags"), dict) else None
    return AnsweredPrediction(puid, labels, version)


def check_served(answered, served_versions):
    """BadInput unless the prediction's model version is one this server's metadata lists."""
    if answered.model_version not in served_versions:
        raise BadInput(f"response.meta.tags.model_version is {answered.model_version!r}, not a model this server "
                       f"serves ({', '.join(sorted(served_versions))})")


def check_feedback(body):
    """The rows, labels, reward and `response` (None if absent) of a Seldon feedback message,
    checked as far as they can be without the model, or BadInput."""
    if not isinstance(body, dict):
        raise BadInput("feedback must be a JSON object with 'request' and 'truth'")
    unknown = set(body) - FEEDBACK_KEYS
    if unknown:
        raise BadInput(f"unknown key(s) {sorted(unknown)} in the feedback: expected 'request', 'truth', "
                       "and optionally 'response' and 'reward'")
    if "request" not in body:
        raise BadInput("feedback needs 'request': the features the prediction was made on")
    rows = features_from_message(body["request"], "request")
    truth = body.get("truth")
    labels = check_truth(_labels_in(truth.get("data") if isinstance(truth, dict) else None), len(rows))
    response = body.get("response")
    if response is not None and not isinstance(response, dict):
        raise BadInput("'response' must be a JSON object: the prediction's response message")
    reward = body.get("reward", 0)
    if isinstance(reward, bool) or not isinstance(reward, (int, float)):
        raise BadInput(f"'reward' must be a number, got {reward!r}")
    return rows, labels, reward, response
