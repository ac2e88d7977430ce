"""The model class seldon-core's wrapper serves: `seldon-core-microservice DockerModel --service-type MODEL`.

The article's class without its defects: the model is loaded and checked when the server starts, bad
input is refused with a 400 that says what is wrong, every row of a feedback call is scored and logged
durably before the call is answered, the figures describe every worker of the container, not one,
and the features of recent requests are watched for drift from the training data.
How each of those is done lives in serving/.
"""
import os
import threading

import numpy as np

from serving import drift, scraped
from serving.artifacts import DEFAULT_MODEL_PATH, load_verified, served_versions
from serving.feedback_log import FeedbackLog, Score
from serving.metrics import FeedbackMetrics
from serving.peers import forward_feedback
from serving.prediction_ids import REPLICA, replica_of
from serving.validation import N_FEATURES, check_features, check_response, check_served, check_truth


class DockerModel:
    """Predicts with a scikit-learn binary classifier and scores the ground truth fed back to it."""

    def __init__(self, model_name=None, model=None, feedback_db=None):
        """model_name: the joblib artifact ($MODEL_PATH, else models/binary-lr.joblib); model: a fitted
        classifier to serve instead (tests inject one); feedback_db: the feedback log's SQLite file
        ($FEEDBACK_DB, else in memory)."""
        self.model_name = model_name or os.environ.get("MODEL_PATH", DEFAULT_MODEL_PATH)
        if model is None:
            self.model, self.model_version = load_verified(self.model_name)
        else:
            self.model, self.model_version = model, f"injected:{type(model).__name__}"
        self.served_versions = served_versions(DEFAULT_MODEL_PATH) | {self.model_version}
        self.feedback = FeedbackLog(feedback_db or os.environ.get("FEEDBACK_DB", ":memory:"))
        self.figures = FeedbackMetrics(self.feedback, self.model_version)
        # None with DRIFT=off, or for an artifact whose metadata records no reference rows.
        self.drift = None if model is not None else drift.DriftMonitor.for_model(self.model_name, self.model_version)
        scraped.figures, scraped.drift = self.figures, self.drift  # what the metrics page reads
        self.last_request = threading.local()

    def load(self):
        """Called in each worker process once it is forked: the model is loaded already."""
        self.figures.worker_started()

    def predict(self, X, features_names=None, meta=None):
        X = check_features(X)
        self.last_request.shape = str(X.shape)
        predictions = self.model.predict(X)
        if self.drift is not None and not drift.is_probe(meta):
            self.drift.observe(X)
        return predictions

    def send_feedback(self, features, feature_names, reward, truth, routing="", response=None):
        """response: the prediction's response, as Seldon's Feedback message carries it. Without it the
        rows are scored as sent; with it, by the predictions it holds, for the model version it names,
        once however often the call is sent, in the log of the replica that made the prediction."""
        X = check_features(features)
        y = check_truth(truth, len(X))
        self.last_request.shape = str(X.shape)
        if response is None:
            self.figures.log_feedback(X, self.model.predict(X), y, self.model_version)
            return []
        answered = check_response(response, len(X))
        owner = replica_of(answered.puid)
        if owner and owner != REPLICA:  # the owner checks the model version: it may serve one this replica does not
            forward_feedback(owner, X, y, response)
        else:
            check_served(answered, self.served_versions)
            self.figures.log_feedback(X, answered.predictions, y, answered.model_version, puid=answered.puid)
        return []

    def send_feedback_raw(self, feedback):
        """What seldon-core calls instead of send_feedback over gRPC and on its own REST route: the whole
        Feedback message, whose `response` send_feedback's other arguments leave out."""
        from serving.feedback_message import feedback_answer, feedback_parts

        rows, labels, reward, response = feedback_parts(feedback)
        self.send_feedback(rows, None, reward, labels, response=response)
        return feedback_answer(self, feedback)

    def metrics(self):
        """accuracy, precision, recall and f1_score over all the feedback logged, and the confusion
        counts as the COUNTER feedback_outcomes{outcome=tp|fp|tn|fn, model=the version that predicted}."""
        return self.figures.metrics()

    def tags(self):
        return {"shape_input_data": getattr(self.last_request, "shape", None), "model_version": self.model_version}

    @property
    def scores(self):
        return Score(**self.feedback.totals())

    def health_status(self):
        """What /health/status answers; raises (answered 500) when the model or its log is unusable.
        A log that cannot be written is said, not raised: predictions go on while feedback gets 507."""
        self.model.predict(np.zeros((1, N_FEATURES)))
        unwritable = self.feedback.writable()
        return {"model_version": self.model_version, "feedback_rows": sum(self.feedback.totals().values()),
                "feedback_log": f"unwritable: {unwritable}" if unwritable else "writable"}

    @property
    def model_error_handler(self):
        """The Flask blueprint seldon-core registers: bad REST requests get a 4xx before its own
        parsing sees them. Imported here: the notebooks, which have no Flask, use the class too."""
        from serving.request_guard import blueprint_for

        return blueprint_for(self)
