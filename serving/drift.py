"""Data drift: are the features of recent prediction requests still distributed like the rows the
model was trained on?

Every predicted row goes into a window of the last DRIFT_WINDOW rows, one window for every process
of the server (shared memory mapped before gunicorn forks its workers): a copy of the row under a
lock, O(1) per row on the request path. After every DRIFT_INTERVAL new rows a thread, off the
request path, compares the window with the reference feature by feature, with the two-sample
Kolmogorov-Smirnov test (scipy.stats.ks_2samp) and a Bonferroni correction for testing 30 features
at once: drift when a p-value is under DRIFT_ALPHA / 30. That is what alibi-detect's KSDrift
computes (alibi-detect 0.12 and later are under the Business Source License; scipy is in the image
already). A test costs about 7 ms of CPU: a process tests at most once every DRIFT_MIN_SECONDS, so
that heavy traffic cannot turn the monitor into load.

The results are read when Prometheus scrapes, with the names Seldon Core's drift detector gives them
(serving/tuning/scrape_metrics puts them on seldon-core's metrics page):

    seldon_metric_drift_p_val{index, feature}     GAUGE    the last test's p-value of each feature
    seldon_metric_drift_distance{index, feature}  GAUGE    its KS statistic
    seldon_metric_drift_threshold                 GAUGE    DRIFT_ALPHA / 30: a p-value under it is drift
    seldon_metric_drift_is_drift                  GAUGE    1 if the last test found drift
    seldon_metric_drift_detections_total          COUNTER  tests that found drift
    seldon_metric_drift_tests_total               COUNTER  tests run

Seldon's detector calls its counter seldon_metric_drift_counter, a name `promtool check metrics`
refuses ("metric name should not include type 'counter'"): here it says what it counts.
"""
import json
import logging
import mmap
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from serving.artifacts import sha256_of

logger = logging.getLogger(__name__)

# The largest reference kept: the exact test's cost grows with it; 1,000 rows describe a
# distribution well enough.
MAX_REFERENCE_ROWS = 1000


class DriftSettingsError(SystemExit):
    """A DRIFT_* setting is not usable: the server does not start, and says why."""


@dataclass(frozen=True)
class DriftSettings:
    enabled: bool = True
    window: int = 100        # rows compared with the reference
    interval: int = 50       # new rows between two tests
    alpha: float = 0.05      # false-alarm rate per test, for all features together
    min_seconds: float = 1.0  # least time between two tests of one process

    @classmethod
    def from_environment(cls, env=os.environ):
        def number(name, kind, default, low, high):
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = kind(text)
            except ValueError:
                raise DriftSettingsError(f"{name}={text!r} is not a {kind.__name__}") from None
            if not low <= value <= high:
                raise DriftSettingsError(f"{name}={text} must be between {low} and {high}")
            return value

        enabled = env.get("DRIFT", "on").strip().lower()
        if enabled not in ("on", "off"):
            raise DriftSettingsError(f"DRIFT={enabled!r}: use on or off")
        return cls(enabled=enabled == "on",
                   window=number("DRIFT_WINDOW", int, cls.window, 10, 100_000),
                   interval=number("DRIFT_INTERVAL", int, cls.interval, 1, 100_000),
                   alpha=number("DRIFT_ALPHA", float, cls.alpha, 1e-9, 0.5),
                   min_seconds=number("DRIFT_MIN_SECONDS", float, cls.min_seconds, 0.0, 3600.0))


@dataclass(frozen=True)
class Reference:
    rows: np.ndarray       # (n, features)
    feature_names: list


def reference_for(model_path):
    """The reference rows models/metadata.json records for the artifact (the rows it was trained
    on), checked against their sha256; None if it records none."""
    folder = os.path.dirname(model_path)
    with open(os.path.join(folder, "metadata.json")) as f:
        entry = json.load(f)["models"].get(os.path.basename(model_path), {}).get("reference")
    if entry is None:
        return None
    path = os.path.join(folder, entry["file"])
    if sha256_of(path) != entry["sha256"]:
        raise ValueError(f"{path} is not the drift reference models/metadata.json records (sha256 differs)")
    rows = np.load(path, allow_pickle=False)
    if len(rows) > MAX_REFERENCE_ROWS:
        rows = rows[np.random.default_rng(0).choice(len(rows), MAX_REFERENCE_ROWS, replace=False)]
    names = entry.get("features") or [str(i) for i in range(rows.shape[1])]
    return Reference(np.ascontiguousarray(rows, dtype=np.float64), list(names))


def ks_test(reference, window, alpha):
    """(p-values, KS distances, is drift) of each feature of `window` against `reference`, with the
    Bonferroni correction: drift when any p-value is under alpha / features."""
    from scipy.stats import ks_2samp

    n_features = reference.shape[1]
    p_values, distances = np.empty(n_features), np.empty(n_features)
    for f in range(n_features):
        result = ks_2samp(reference[:, f], window[:, f])
        distances[f], p_values[f] = result.statistic, result.pvalue
    return p_values, distances, bool(p_values.min() < alpha / n_features)


def is_probe(meta):
    """A request that only checks the server answers (the blackbox exporter's, monitoring/blackbox.yml,
    tagged {"probe": ...}): its one fixed row, every 2 s, would fill an idle server's window and
    look like drift."""
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return isinstance(tags, dict) and "probe" in tags


# Shared counters (int64) at the start of the mapped memory.
ROWS_SEEN, TESTS, DRIFTS, TESTED_AT_ROW = range(4)
# The lock is held for a copy of a few rows: a request waits for it at most LOCK_WAIT_S, and after
# STALLED_AFTER misses in a row its holder is taken for dead. A test or a scrape waits longer.
LOCK_WAIT_S, STALLED_AFTER, STATE_WAIT_S = 0.05, 3, 2.0


class StalledLock(RuntimeError):
    """The shared window's lock was not had in time: a process died holding it."""


class _Held:
    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.lock.release()


class DriftMonitor:
    """The window of recent rows and the last test's results, shared by the processes forked after
    it is made. `background=False` tests in the caller's thread, at every interval, without the
    time limit: for simulations and tests."""

    def __init__(self, reference, settings=DriftSettings(), model_version="", background=True):
        self.reference, self.settings, self.model_version = reference, settings, model_version
        self.background = background
        n_features = reference.rows.shape[1]
        self.threshold = settings.alpha / n_features
        window_bytes = settings.window * n_features * 8
        self._memory = mmap.mmap(-1, 8 * 4 + window_bytes + 8 * 2 * n_features)  # MAP_SHARED
        self._counters = np.frombuffer(self._memory, dtype=np.int64, count=4)
        self._window = np.frombuffer(self._memory, dtype=np.float64, count=settings.window * n_features,
                                     offset=32).reshape(settings.window, n_features)
        self._results = np.frombuffer(self._memory, dtype=np.float64, count=2 * n_features,
                                      offset=32 + window_bytes).reshape(2, n_features)
        self._lock = multiprocessing.Lock()
        self._wake = None
        self._thread_pid = None
        self._thread_lock = threading.Lock()
        self._missed = 0  # consecutive rows not added: the lock was not had in time

    @classmethod
    def for_model(cls, model_path, model_version, settings=None):
        """The monitor of a served artifact, or None when DRIFT=off or its metadata has no reference."""
        settings = settings or DriftSettings.from_environment()
        if not settings.enabled:
            return None
        reference = reference_for(model_path)
        if reference is None:
            logger.warning("No drift reference recorded for %s: drift detection is off", model_path)
            return None
        import scipy.stats  # noqa: F401 - before the workers fork, not in each one's first test

        return cls(reference, settings, model_version)

    # -- the request path --------------------------------------------------------------------

    def observe(self, rows):
        """Adds predicted rows to the window; wakes the test when DRIFT_INTERVAL more have come."""
        if self._missed >= STALLED_AFTER:
            return
        n = len(rows)
        tail = rows[-self.settings.window:]
        # A process killed while it held the lock would hold it for ever: predictions go on
        # without the monitor rather than wait for it.
        if not self._lock.acquire(timeout=LOCK_WAIT_S):
            self._missed += 1
            if self._missed == STALLED_AFTER:
                logger.error("The drift window's lock was not had in %s s %s times running: its holder is gone, "
                             "this process adds no more rows", LOCK_WAIT_S, STALLED_AFTER)
            return
        self._missed = 0
        try:
            seen = int(self._counters[ROWS_SEEN])
            start = (seen + n - len(tail)) % self.settings.window
            first = min(len(tail), self.settings.window - start)
            self._window[start:start + first] = tail[:first]
            self._window[:len(tail) - first] = tail[first:]
            self._counters[ROWS_SEEN] = seen + n
        finally:
            self._lock.release()
        if seen + n >= self.settings.window and (seen + n) // self.settings.interval > seen // self.settings.interval:
            self._test_soon()

    def _test_soon(self):
        if not self.background:
            self.test()
            return
        with self._thread_lock:
            if self._thread_pid != os.getpid():  # a forked worker has no thread yet
                self._wake, self._thread_pid = threading.Event(), os.getpid()
                threading.Thread(target=self._test_loop, args=(self._wake,), name="drift-test", daemon=True).start()
        self._wake.set()

    def _test_loop(self, wake):
        while True:
            wake.wait()
            wake.clear()
            try:
                self.test()
            except Exception:  # noqa: BLE001 - a failed test must not end the monitor
                logger.exception("drift test failed")
            time.sleep(self.settings.min_seconds)  # wakes meanwhile make one test

    # -- off the request path ----------------------------------------------------------------

    def _locked(self):
        """The lock, or StalledLock if its holder seems gone (see observe)."""
        if not self._lock.acquire(timeout=STATE_WAIT_S):
            raise StalledLock("the drift window's lock was not had in time: its holder is gone")
        return _Held(self._lock)

    def test(self):
        """Tests the window as it is now; returns (p-values, distances, is drift)."""
        with self._locked():
            seen = int(self._counters[ROWS_SEEN])
            window = self._window.copy()
        p_values, distances, is_drift = ks_test(self.reference.rows, window, self.settings.alpha)
        with self._locked():
            if seen > self._counters[TESTED_AT_ROW] or not self._counters[TESTS]:  # a later test may have finished first
                self._results[0], self._results[1] = p_values, distances
                self._counters[TESTED_AT_ROW] = seen
            self._counters[TESTS] += 1
            self._counters[DRIFTS] += is_drift
        return p_values, distances, is_drift

    def state(self):
        """What the last test found, read at once: {rows_seen, tests, drifts, p_values, distances,
        is_drift} (p_values etc. None before the first test)."""
        with self._locked():
            counters = [int(v) for v in self._counters]
            results = self._results.copy()
        tested = counters[TESTS] > 0
        return {"rows_seen": counters[ROWS_SEEN], "tests": counters[TESTS], "drifts": counters[DRIFTS],
                "tested_at_row": counters[TESTED_AT_ROW],
                "p_values": results[0] if tested else None, "distances": results[1] if tested else None,
                "is_drift": bool(tested and results[0].min() < self.threshold)}

    def families(self):
        """The figures as prometheus_client metric families, for the metrics page."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            state = self.state()
        except StalledLock:
            logger.error("drift figures left off the metrics page: the window's lock is held by a process that is gone")
            return []
        model = {"model": self.model_version}
        counter = CounterMetricFamily("seldon_metric_drift_detections", "Drift tests that found drift (a p-value "
                                      "under the threshold), since the server started.", labels=list(model))
        counter.add_metric(list(model.values()), state["drifts"])
        tests = CounterMetricFamily("seldon_metric_drift_tests", f"Drift tests run, one per {self.settings.interval} "
                                    f"new rows at most, on the last {self.settings.window}.", labels=list(model))
        tests.add_metric(list(model.values()), state["tests"])
        families = [counter, tests]
        if state["p_values"] is None:
            return families
        threshold = GaugeMetricFamily("seldon_metric_drift_threshold", "The p-value under which a feature "
                                      "has drifted: alpha / features (Bonferroni).", labels=list(model))
        threshold.add_metric(list(model.values()), self.threshold)
        is_drift = GaugeMetricFamily("seldon_metric_drift_is_drift", "1 if the last drift test found drift.",
                                     labels=list(model))
        is_drift.add_metric(list(model.values()), float(state["is_drift"]))
        labels = ["index", "feature", "model"]
        p_val = GaugeMetricFamily("seldon_metric_drift_p_val", "The last drift test's p-value of each feature "
                                  "(two-sample Kolmogorov-Smirnov, window against reference).", labels=labels)
        distance = GaugeMetricFamily("seldon_metric_drift_distance", "The last drift test's KS statistic of "
                                     "each feature: the largest gap between the two distribution functions.",
                                     labels=labels)
        for i, name in enumerate(self.reference.feature_names):
            p_val.add_metric([str(i), name, self.model_version], float(state["p_values"][i]))
            distance.add_metric([str(i), name, self.model_version], float(state["distances"][i]))
        return families + [threshold, is_drift, p_val, distance]
