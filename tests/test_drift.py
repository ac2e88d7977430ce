"""The drift monitor (serving/drift.py): its window, its test, its settings and what it exports."""
import os
import time

import numpy as np
import pytest
from scipy.stats import ks_2samp

from kit.training import load_test_set
from serving.drift import (DriftMonitor, DriftSettings, DriftSettingsError, Reference, ks_test,
                           reference_for)
from kit import MODELS_DIR


@pytest.fixture(scope="module")
def reference():
    return reference_for(str(MODELS_DIR / "binary-lr.joblib"))


@pytest.fixture(scope="module")
def rows():
    return load_test_set()[0]


def test_the_reference_is_the_training_rows_checked_by_sha256(reference, tmp_path):
    from kit.training import load_split

    assert np.array_equal(reference.rows, load_split()[0])
    assert reference.feature_names[0] == "mean radius" and len(reference.feature_names) == 30
    for name in ("metadata.json", "binary-lr.joblib"):
        (tmp_path / name).write_bytes((MODELS_DIR / name).read_bytes())
    altered = np.load(MODELS_DIR / "training-rows.npy")
    altered[0, 0] += 1
    np.save(tmp_path / "training-rows.npy", altered)
    with pytest.raises(ValueError, match="sha256"):
        reference_for(str(tmp_path / "binary-lr.joblib"))


def test_the_window_holds_the_last_rows_however_they_arrive(reference):
    monitor = DriftMonitor(reference, DriftSettings(window=10, interval=1000), background=False)
    stream = np.arange(37 * 30, dtype=float).reshape(37, 30)
    monitor.observe(stream[:3])
    monitor.observe(stream[3:4])
    monitor.observe(stream[4:22])   # more than the window at once, and wrapping round
    monitor.observe(stream[22:29])
    monitor.observe(stream[29:])
    assert monitor.state()["rows_seen"] == 37
    assert sorted(map(tuple, monitor._window)) == sorted(map(tuple, stream[-10:]))


def test_ks_test_is_scipys_per_feature_with_bonferroni(reference, rows):
    window = rows[:100]
    p_values, distances, is_drift = ks_test(reference.rows, window, 0.05)
    for f in (0, 7, 29):
        expected = ks_2samp(reference.rows[:, f], window[:, f])
        assert p_values[f] == expected.pvalue and distances[f] == expected.statistic
    assert is_drift == (p_values.min() < 0.05 / 30)
    shifted = window.copy()
    shifted[:, 3] += 2 * reference.rows[:, 3].std()
    p_shifted, _, drifted = ks_test(reference.rows, shifted, 0.05)
    assert drifted and int(np.argmin(p_shifted)) == 3


def test_a_test_runs_every_interval_once_the_window_is_full(reference, rows):
    monitor = DriftMonitor(reference, DriftSettings(window=100, interval=50), background=False)
    for i in range(0, 99):
        monitor.observe(rows[i:i + 1])
    assert monitor.state()["tests"] == 0 and monitor.state()["p_values"] is None
    monitor.observe(rows[99:100])   # 100 rows: full, and a multiple of 50
    assert monitor.state()["tests"] == 1
    monitor.observe(rows[100:149])
    assert monitor.state()["tests"] == 1
    monitor.observe(rows[149:151])  # crosses 150
    state = monitor.state()
    assert state["tests"] == 2 and state["tested_at_row"] == 151 and not state["is_drift"]
    monitor.observe(rows[151:400] * 1.3)  # another instrument, reading 30 % high: one call, one test
    state = monitor.state()
    assert state["is_drift"] and state["drifts"] == 1 and state["tests"] == 3


def test_a_forked_worker_fills_the_same_window_and_its_thread_tests(reference, rows):
    monitor = DriftMonitor(reference, DriftSettings(window=100, interval=50, min_seconds=0), background=True)
    pid = os.fork()
    if pid == 0:  # the worker: its rows, its test thread
        try:
            monitor.observe(rows[:120] * 1.5)
            deadline = time.monotonic() + 20
            while monitor.state()["tests"] < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    state = monitor.state()
    assert state["rows_seen"] == 120 and state["tests"] == 1 and state["is_drift"]


def test_the_metrics_page_families_carry_seldons_names(reference, rows):
    monitor = DriftMonitor(reference, DriftSettings(window=100, interval=100), "binary-lr.joblib@abc",
                           background=False)
    names = {f.name for f in monitor.families()}
    assert names == {"seldon_metric_drift_detections", "seldon_metric_drift_tests"}  # before any test
    monitor.observe(rows[:100])
    families = {f.name: f for f in monitor.families()}
    assert set(families) == {"seldon_metric_drift_detections", "seldon_metric_drift_tests",
                             "seldon_metric_drift_threshold", "seldon_metric_drift_is_drift",
                             "seldon_metric_drift_p_val", "seldon_metric_drift_distance"}
    p_val = families["seldon_metric_drift_p_val"].samples
    assert len(p_val) == 30 and p_val[0].labels == {"index": "0", "feature": "mean radius",
                                                    "model": "binary-lr.joblib@abc"}
    assert families["seldon_metric_drift_threshold"].samples[0].value == pytest.approx(0.05 / 30)
    assert families["seldon_metric_drift_tests"].samples[0].value == 1


@pytest.mark.parametrize("env, message", [
    ({"DRIFT": "maybe"}, "DRIFT='maybe'"),
    ({"DRIFT_WINDOW": "ten"}, "not a int"),
    ({"DRIFT_WINDOW": "5"}, "between 10"),
    ({"DRIFT_ALPHA": "0.9"}, "between"),
])
def test_bad_settings_stop_the_server_with_a_reason(env, message):
    with pytest.raises(DriftSettingsError, match=message):
        DriftSettings.from_environment(env)


def test_settings_from_the_environment():
    s = DriftSettings.from_environment({"DRIFT_WINDOW": "200", "DRIFT_INTERVAL": "20", "DRIFT_ALPHA": "0.01"})
    assert (s.enabled, s.window, s.interval, s.alpha) == (True, 200, 20, 0.01)
    assert not DriftSettings.from_environment({"DRIFT": "off"}).enabled


def test_docker_model_watches_its_predictions(monkeypatch, rows):
    from DockerModel import DockerModel

    monkeypatch.setenv("DRIFT_WINDOW", "50")
    monkeypatch.setenv("DRIFT_INTERVAL", "50")
    model = DockerModel()
    model.drift.background = False
    model.predict(rows[:50])
    assert model.drift.state()["tests"] == 1
    model.predict(rows[:50], meta={"tags": {"probe": "blackbox"}})  # the monitoring probe's row
    model.predict(rows[:10], meta={"tags": {"client": "a"}})
    assert model.drift.state()["rows_seen"] == 60
    monkeypatch.setenv("DRIFT", "off")
    assert DockerModel().drift is None


def test_an_injected_reference_without_names_gets_indices():
    monitor = DriftMonitor(Reference(np.zeros((20, 3)), ["0", "1", "2"]), DriftSettings(window=10, interval=10),
                           background=False)
    monitor.observe(np.ones((10, 3)))
    assert monitor.state()["is_drift"]


def test_a_lock_held_for_ever_costs_requests_little_and_leaves_the_page(reference, rows):
    monitor = DriftMonitor(reference, DriftSettings(window=10, interval=10), background=False)
    monitor._lock.acquire()  # as by a process killed while it held it
    started = time.monotonic()
    for i in range(20):
        monitor.observe(rows[i:i + 1])
    assert time.monotonic() - started < 0.5  # three waits of 50 ms, then no more
    assert monitor.families() == []
