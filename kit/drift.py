"""Measuring the drift monitor (serving/drift.py): how often it cries wolf, how soon it sees a shift.

The served monitor itself is run here, in this process, on streams of rows: `background=False`
tests in the caller's thread at every DRIFT_INTERVAL rows (the served one also tests at most once a
second per process, which only binds above 50 rows a second). Undrifted traffic is the 513 test
rows, which come from the same patients' population as the 56 training rows (the reference), in a
fresh random order each pass: rows drawn with replacement would repeat, and the KS test reads
repeated rows as ties no continuous measurement gives.
"""
from dataclasses import dataclass

import numpy as np

from serving.drift import DriftMonitor, DriftSettings


def undrifted_rows(pool, rng):
    """Endless rows of the pool, each pass in a new random order."""
    while True:
        yield from pool[rng.permutation(len(pool))]


def shift_feature(index, sds, reference):
    """A change that adds `sds` of the reference's standard deviations to one feature."""
    step = sds * reference.rows[:, index].std()

    def change(rows):
        rows = rows.copy()
        rows[:, index] += step
        return rows
    change.label = f"feature {index} + {sds:g} sd"
    return change


def rescale(factor):
    """Every feature read `factor` times its value: another hospital's instrument."""
    def change(rows):
        return rows * factor
    change.label = f"all features x {factor:g}"
    return change


def _monitor(reference, settings):
    return DriftMonitor(reference, settings, background=False)


def false_alarms(reference, pool, settings=DriftSettings(), tests=2000, seed=0):
    """Runs `tests` tests on undrifted traffic: {tests, alarms, rate, min_p_values (one per test)}."""
    monitor, rng = _monitor(reference, settings), np.random.default_rng(seed)
    stream = undrifted_rows(pool, rng)
    min_p = []
    while monitor.state()["tests"] < tests:
        rows = np.array([next(stream) for _ in range(settings.interval)])
        before = monitor.state()["tests"]
        monitor.observe(rows)
        state = monitor.state()
        if state["tests"] > before:
            min_p.append(float(state["p_values"].min()))
    state = monitor.state()
    return {"tests": state["tests"], "alarms": state["drifts"], "rate": state["drifts"] / state["tests"],
            "min_p_values": np.array(min_p)}


@dataclass
class Trace:
    """One run: the rows seen at each test, its smallest p-value, whether it found drift."""
    rows: np.ndarray
    min_p: np.ndarray
    drift: np.ndarray
    shift_at: int
    delay: int | None     # rows from the first changed row to the first test that found drift


def run_with_change(reference, pool, change, settings=DriftSettings(), before=None, max_rows=3000, seed=0,
                    after=0):
    """Undrifted rows until the window is full and tested (`before`, default one window), then
    changed rows, one a request, until a test finds drift (and `after` more), or `max_rows`."""
    monitor, rng = _monitor(reference, settings), np.random.default_rng(seed)
    stream = undrifted_rows(pool, rng)
    # The change starts anywhere between two tests, as it would in real traffic.
    before = settings.window + int(rng.integers(settings.interval)) if before is None else before
    seen, tests, at, min_p, drift, delay = 0, 0, [], [], [], None
    while seen < before + max_rows:
        row = next(stream)[None, :]
        changed = seen >= before
        monitor.observe(change(row) if changed else row)
        seen += 1
        state = monitor.state()
        if state["tests"] > tests:
            tests = state["tests"]
            at.append(seen)
            min_p.append(float(state["p_values"].min()))
            drift.append(state["is_drift"])
            if changed and state["is_drift"] and delay is None:
                delay = seen - before
        if delay is not None and seen >= before + delay + after:
            break
    return Trace(np.array(at), np.array(min_p), np.array(drift), before, delay)


def detection_delays(reference, pool, changes, settings=DriftSettings(), runs=20, max_rows=3000):
    """{change label: [delay of each run in rows, None if not seen within max_rows]}."""
    return {change.label: [run_with_change(reference, pool, change, settings, max_rows=max_rows, seed=seed).delay
                           for seed in range(runs)]
            for change in changes}
