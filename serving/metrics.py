"""What DockerModel.metrics() reports, for every worker of the container at once.

The four ratios are GAUGEs over everything in the feedback log. The confusion counts are COUNTER
increments: seldon-core adds each to its own process's series, so each process claims the part of
the logged totals not yet reported by any process (its own feedback as it logs it, and what a
restarted server restored from its log), and the series of all workers sum to the totals exactly.
"""
import atexit
import hashlib
import logging
import os
import threading

import numpy as np

from serving.feedback_log import OUTCOMES, AlreadyFedBack, LogUnwritable, ratios
from serving.tuning import metrics_store
from serving.validation import BadInput, Unavailable

logger = logging.getLogger(__name__)


# The HELP line of each metric on the metrics page (serving/tuning/metrics_exposition writes them).
HELP = {
    "feedback_outcomes": "Feedback rows scored by this worker process, by outcome (tp, fp, tn, fn) and by the "
                         "model version that made the prediction. Summed over every series of a model they "
                         "are its confusion matrix.",
    "accuracy": "Accuracy of all the feedback logged by the container: (TP + TN) / all.",
    "precision": "Precision of all the feedback logged by the container: TP / (TP + FP).",
    "recall": "Recall of all the feedback logged by the container: TP / (TP + FN).",
    "f1_score": "F1 of all the feedback logged by the container.",
}


class FeedbackMetrics:
    def __init__(self, feedback_log, model_version):
        self.log, self.model_version = feedback_log, model_version
        # The wrapper's counters start empty with every new server process: everything in the log is
        # exported again, under a label of its own so that Prometheus sees new series, not a reset
        # (worker ids are pids, which repeat in a fresh container).
        try:
            self.log.forget_exports()
        except LogUnwritable as err:
            # The server must start, to serve predictions; what an earlier process exported is then
            # not exported again (its counters start low) until the log can be written.
            logger.error("%s: the feedback counters of an earlier start are not exported again", err)
        self.server_start = os.urandom(4).hex()
        self._cache = (None, None)  # (feedback log version, the four ratio GAUGEs)
        self._claimed = {}  # {(model version, outcome): rows} logged by this process, not yet reported
        self._claimed_lock = threading.Lock()
        self._workers = set()

    def worker_started(self):
        """In each worker process once forked (DockerModel.load)."""
        pid = os.getpid()
        if pid in self._workers:
            return
        self._workers.add(pid)
        # seldon-core drops a worker's counters when it exits cleanly: its share is handed back.
        atexit.register(self.log.release, pid)
        # Prometheus's increase() and rate() take a series' first sample as its baseline: a series
        # first seen already holding a feedback call's increments would hide them from windowed
        # rules. So each worker's counters start at 0, where seldon-core's store is known.
        store = metrics_store.current()
        if store is not None:
            store.update([self._counter(self.model_version, o, 0) for o in OUTCOMES], "feedback")

    def log_feedback(self, X, predictions, y, model_version, puid=None):
        """Logs checked rows with their predictions and labels; their outcomes are claimed for this
        process in the same transaction, for the next metrics(). With the `puid` of the prediction,
        once: the same call again logs nothing, other rows or labels for it are refused (409)."""
        digest = None if puid is None else hashlib.sha256(
            np.ascontiguousarray(X, dtype=np.float64).tobytes() + np.asarray(y, dtype=np.int64).tobytes()).hexdigest()
        try:
            batch = self.log.append(X, predictions, y, model_version, exporter=os.getpid(), puid=puid, digest=digest)
        except AlreadyFedBack as err:
            raise BadInput(str(err), 409) from None
        except LogUnwritable as err:
            raise Unavailable(f"{err}: nothing of this feedback call was logged or counted; send it again once "
                              "the log can be written (/health/status says when)", 507) from None
        if batch is None:
            return
        with self._claimed_lock:
            for outcome, n in batch.items():
                key = (model_version, outcome)
                self._claimed[key] = self._claimed.get(key, 0) + n

    def metrics(self):
        version = self.log.version()
        cached_version, gauges = self._cache
        if version == cached_version:
            # Nothing was written to the log since, by any process: the ratios stand and nothing is
            # left to claim. This spares every prediction two SQLite reads.
            increments = {}
        else:
            # The version is read before the log: whatever is committed after it is seen next time.
            try:
                increments = self.log.claim_unexported(os.getpid())
            except LogUnwritable:
                # The rows stay unclaimed in the log and are claimed by a later call: predictions
                # must not fail because the log cannot take the claim.
                increments, version = {}, None
            gauges = [{"type": "GAUGE", "key": key, "value": value}
                      for key, value in ratios(self.log.totals()).items()]
            self._cache = (version, gauges)
        with self._claimed_lock:
            claimed, self._claimed = self._claimed, {}
        # This server's own model always (an increment of 0 costs nothing), any other only with rows.
        counts = {(self.model_version, o): 0 for o in OUTCOMES}
        for key in set(increments) | set(claimed):
            counts[key] = increments.get(key, 0) + claimed.get(key, 0)
        return [dict(g) for g in gauges] + [self._counter(v, o, n) for (v, o), n in counts.items()]

    def families(self):
        """Whether the log can be written now, for the metrics page (serving/tuning/scrape_metrics)."""
        from prometheus_client.core import GaugeMetricFamily

        writable = GaugeMetricFamily("feedback_log_writable", "1 if a write to the feedback log commits now, 0 "
                                     "if it cannot (disk full, read-only): feedback is refused with 507 meanwhile.",
                                     labels=["model"])
        writable.add_metric([self.model_version], 0.0 if self.log.writable() else 1.0)
        return [writable]

    def _counter(self, model_version, outcome, value):
        return {"type": "COUNTER", "key": "feedback_outcomes", "value": value,
                "tags": {"outcome": outcome, "model": model_version, "server_start": self.server_start}}
