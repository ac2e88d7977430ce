"""The model class that seldon-core's Python wrapper serves: `seldon-core-microservice DockerModel`.

The article's interface (load, predict, send_feedback, metrics, tags, Score) without its defects:
the model is loaded and verified when the server starts, every row of a feedback call is scored
and logged durably before the call is answered, bad input is refused with a 400 that says what
was wrong, and the figures reported describe every worker of the container, not one.
"""
import atexit
import hashlib
import json
import logging
import multiprocessing
import numbers
import os
import threading

import joblib
import numpy as np

from feedback_log import OUTCOMES, FeedbackLog, ratios

try:
    from seldon_core.flask_utils import SeldonMicroserviceException as _SeldonError
    from seldon_core.user_model import SeldonNotImplementedError

    import keepalive_worker
    import seldon_metrics_patch  # makes the wrapper's metrics store skip no-op updates

    keepalive_worker.use_for_one_thread()
    metrics_store = seldon_metrics_patch.current
except ImportError:  # the notebook environment has no seldon-core; same shape, same meaning

    def metrics_store():
        return None

    class SeldonNotImplementedError(NotImplementedError):
        pass

    class _SeldonError(Exception):
        status_code = 400

        def __init__(self, message, status_code=None, payload=None, reason="MICROSERVICE_BAD_DATA"):
            super().__init__(message)
            self.message = message
            self.status_code = status_code or self.status_code
            self.reason = reason

        def to_dict(self):
            return {"status": {"status": 1, "info": self.message, "code": -1, "reason": self.reason}}


logger = logging.getLogger(__name__)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL_PATH = os.path.join(HERE, "models", "binary-lr.joblib")
N_FEATURES = 30
MESSAGE_KEYS = {"data", "meta"}
# Far beyond any of the breast-cancer measurements (the largest, a worst area, is about 4,300).
MAX_ABS_FEATURE = 1e6


class BadInput(_SeldonError):
    """A request the model refuses: answered 400 with the message."""

    def __init__(self, message):
        super().__init__(message, status_code=400, reason="BAD_INPUT")

    def __str__(self):
        return self.message


class ModelMismatch(RuntimeError):
    """The artifact is not the one recorded in models/metadata.json: the server must not start."""


class Score:
    """Confusion-matrix counts of a binary classifier."""

    def __init__(self, TP=0, FP=0, TN=0, FN=0):
        self.TP, self.FP, self.TN, self.FN = TP, FP, TN, FN

    def __repr__(self):
        return f"Score(TP={self.TP}, FP={self.FP}, TN={self.TN}, FN={self.FN})"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_verified(path):
    """Loads a joblib artifact after checking it against the metadata written at training time."""
    import sklearn

    metadata_path = os.path.join(os.path.dirname(path), "metadata.json")
    with open(metadata_path) as f:
        metadata = json.load(f)
    name = os.path.basename(path)
    recorded = metadata["models"].get(name)
    if recorded is None:
        raise ModelMismatch(f"{name} is not listed in {metadata_path}: retrain with `make models`")
    actual = sha256_of(path)
    if actual != recorded["sha256"]:
        raise ModelMismatch(f"{path} has sha256 {actual}, but {metadata_path} records "
                            f"{recorded['sha256']}: the artifact was changed or corrupted")
    trained_with = metadata["versions"]["scikit-learn"]
    if trained_with != sklearn.__version__:
        raise ModelMismatch(f"{name} was trained with scikit-learn {trained_with}, this environment has "
                            f"{sklearn.__version__}: pin the same version (constraints.txt) or retrain")
    return joblib.load(path), actual


def _first_non_number(values):
    for i, row in enumerate(values):
        for j, v in enumerate(row if isinstance(row, (list, tuple, np.ndarray)) else [row]):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                return i, j, v
    return None


def check_features(X):
    """The input as a float array of shape (rows, 30), or BadInput saying what is wrong with it."""
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
    if arr.shape[0] == 0:
        raise BadInput("the request has no rows")
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
    return arr


def features_from_message(message, where="the request"):
    """The rows of a Seldon JSON message ({'data': {'ndarray' | 'tensor': ...}}), checked, or BadInput."""
    if not isinstance(message, dict):
        raise BadInput(f"{where} must be a JSON object with a 'data' key")
    unknown = set(message) - MESSAGE_KEYS
    if unknown:
        raise BadInput(f"unknown key(s) {sorted(unknown)} in {where}: expected 'data' (and optionally 'meta')")
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
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadInput(f"tensor shape must be non-negative integers, got {shape}")
    size = 1
    for d in shape:
        size *= d
    if size != len(tensor["values"]):
        raise BadInput(f"tensor shape {shape} holds {size} values but 'values' has {len(tensor['values'])}")
    if len(shape) != 2:
        raise BadInput(f"tensor shape must be [rows, 30], got {shape}")
    if size == 0:
        raise BadInput("the request has no rows")
    return check_features([tensor["values"][i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])])


def check_truth(truth, n_rows):
    """The true labels as an int array of n_rows zeros and ones, or BadInput."""
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
    return np.array(labels, dtype=np.int64)


def _stop_helper_processes(main_pid):
    """On SIGTERM gunicorn drains its workers and returns, but seldon-core's main process then waits
    forever for its gRPC server process: end the helper processes so that the server exits.
    Forked workers inherit this exit handler and must not act on it."""
    if os.getpid() == main_pid:
        for child in multiprocessing.active_children():
            child.terminate()


class DockerModel:
    """Predicts with a scikit-learn binary classifier and scores the ground truth fed back to it."""

    def __init__(self, model_name=None, model=None, feedback_db=None):
        """
        model_name: path of the joblib artifact (default: $MODEL_PATH, else models/binary-lr.joblib).
        model: an already fitted classifier to serve instead of loading one (tests inject it).
        feedback_db: SQLite file of the feedback log (default: $FEEDBACK_DB, else in memory).
        """
        self.model_name = model_name or os.environ.get("MODEL_PATH", DEFAULT_MODEL_PATH)
        if model is None:
            model, digest = load_verified(self.model_name)
            self.model_version = f"{os.path.basename(self.model_name)}@{digest[:12]}"
            logger.info("Model %s loaded and verified", self.model_version)
        else:
            self.model_version = f"injected:{type(model).__name__}"
        self.model = model
        self.loaded = True
        self.feedback = FeedbackLog(feedback_db or os.environ.get("FEEDBACK_DB", ":memory:"))
        # The wrapper's counters start empty with every new server process: everything in the log is
        # exported again, under a label of its own so that Prometheus sees new series, not a reset
        # (worker ids are pids, which repeat in a fresh container).
        self.feedback.forget_exports()
        self.server_start = os.urandom(4).hex()
        self._request = threading.local()
        self._metrics_cache = (None, None)  # (feedback log version, the four ratios)
        self._claimed = dict.fromkeys(OUTCOMES, 0)  # logged here, not yet reported by metrics()
        self._claimed_lock = threading.Lock()
        self._exit_handlers = set()
        atexit.register(_stop_helper_processes, os.getpid())

    def load(self):
        """Called by the wrapper in each worker process once forked: the model is already loaded."""
        pid = os.getpid()
        if pid not in self._exit_handlers:
            # seldon-core drops a worker's counters when it exits cleanly: hand its share back.
            atexit.register(self.feedback.release, pid)
            self._exit_handlers.add(pid)
            self._announce_counters()

    def _announce_counters(self):
        """Creates this process's feedback counters at 0 as it starts. Prometheus's increase() and
        rate() take a series' first sample as its baseline: a series first seen already holding
        the increments of a feedback call would hide them from every windowed rule."""
        store = metrics_store()
        if store is not None:
            store.update([{"type": "COUNTER", "key": "feedback_outcomes", "value": 0,
                           "tags": {"outcome": o, "server_start": self.server_start}} for o in OUTCOMES],
                         "feedback")

    def predict(self, X, features_names=None, meta=None):
        return self._predict_checked(check_features(X))

    def _predict_checked(self, X):
        self._request.shape = str(X.shape)
        return self.model.predict(X)

    def predict_raw(self, request):
        """A REST prediction straight from its JSON message, skipping seldon-core's generic
        JSON-to-numpy-and-back conversions; the response has the same shape as seldon-core's."""
        if hasattr(request, "DESCRIPTOR"):  # a protobuf message, from gRPC
            raise SeldonNotImplementedError("gRPC: seldon-core converts the message, then calls predict()")
        predictions = self._predict_checked(features_from_message(request)).tolist()
        if "tensor" in request["data"]:
            data = {"names": [], "tensor": {"shape": [len(predictions)], "values": predictions}}
        else:
            data = {"names": [], "ndarray": predictions}
        meta = {"metrics": self.metrics(), "tags": self.tags()}
        puid = (request.get("meta") or {}).get("puid")
        if puid:
            meta["puid"] = puid
        return {"data": data, "meta": meta}

    def send_feedback(self, features, feature_names, reward, truth, routing=""):
        X = check_features(features)
        self.log_feedback(X, check_truth(truth, len(X)))
        return []

    def log_feedback(self, X, y):
        """Scores and logs rows and labels already checked (check_features, check_truth). Their
        outcomes are claimed for this process in the same transaction: metrics() reports them."""
        self._request.shape = str(X.shape)
        batch = self.feedback.append(X, self.model.predict(X), y, self.model_version, exporter=os.getpid())
        with self._claimed_lock:
            for outcome, n in batch.items():
                self._claimed[outcome] += n

    @property
    def scores(self):
        totals = self.feedback.totals()
        return Score(TP=totals["tp"], FP=totals["fp"], TN=totals["tn"], FN=totals["fn"])

    def calculate_metrics(self):
        """Accuracy, precision, recall and F1 over every feedback row this server has logged."""
        m = ratios(self.feedback.totals())
        return m["accuracy"], m["precision"], m["recall"], m["f1_score"]

    def metrics(self):
        """The four ratios as GAUGEs, and the confusion counts as COUNTER increments.

        The wrapper adds a COUNTER's value to this process's series; each process claims the part of
        the logged totals not yet reported by any process (its own feedback as it logs it), so the
        series of all workers sum to the totals exactly, including what a restarted server restored
        from its log.
        """
        version = self.feedback.version()
        cached_version, gauges = self._metrics_cache
        if version == cached_version:
            # Nothing was written to the log since, by any process: the ratios stand and nothing is
            # left to claim. This spares every prediction two SQLite reads.
            increments = dict.fromkeys(OUTCOMES, 0)
        else:
            # The version read before the log is: whatever is committed after it is seen next time.
            increments = self.feedback.claim_unexported(os.getpid())
            gauges = [{"type": "GAUGE", "key": key, "value": value}
                      for key, value in ratios(self.feedback.totals()).items()]
            self._metrics_cache = (version, gauges)
        with self._claimed_lock:
            claimed, self._claimed = self._claimed, dict.fromkeys(OUTCOMES, 0)
        return [dict(g) for g in gauges] + [
            {"type": "COUNTER", "key": "feedback_outcomes", "value": increments[o] + claimed[o],
             "tags": {"outcome": o, "server_start": self.server_start}}
            for o in OUTCOMES
        ]

    def tags(self):
        return {"shape_input_data": getattr(self._request, "shape", None), "model_version": self.model_version}

    def health_status(self):
        """What /health/status answers: raises (answered 500) when the model or its log is unusable."""
        self.model.predict(np.zeros((1, N_FEATURES)))
        return {"model_version": self.model_version, "feedback_rows": sum(self.feedback.totals().values())}

    @property
    def model_error_handler(self):
        """Checks raw REST requests before seldon-core parses them (see request_guard.py)."""
        import request_guard

        return request_guard.blueprint_for(self)
