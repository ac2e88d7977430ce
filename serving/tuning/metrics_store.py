"""seldon-core's metrics store (`SeldonMetrics`, behind :6000/metrics), without its needless round trips.

1. `update` leaves out what would change nothing: COUNTER increments of 0 for series this process
   already has, GAUGEs equal to what this process last stored; and when that is everything, it
   skips the round trips to its multiprocessing Manager. The wrapper calls `update` twice per
   request; on the prediction path both change nothing (only feedback changes the figures), and
   their IPC was about three quarters of a request's cost.
2. `update` is serialised between the threads of a process: seldon-core reads this process's series
   from the Manager, adds, and writes them back, so two threads updating at once (GUNICORN_THREADS>1)
   would lose one of the increments. With that lock held, seldon-core's own Manager lock adds
   nothing (each process writes only its own entry) but four of the six round trips, about two
   thirds of a feedback call's cost: `update` runs without it, and as no other process writes this
   process's entry, the last value written is kept here rather than read back each time.
3. The instance the wrapper creates is remembered (`current()`), so that the kit can start each
   worker's counters at 0 and record metrics where it answers requests itself (rest_shortcut).
"""
import contextlib
import os
import threading


_instances = []
_stored = {}  # (pid, type, key, tags) -> last value this process stored
_written = {}  # pid -> the entry this process last wrote to the shared dict
_update_lock = threading.Lock()  # a forked worker gets a fresh, unlocked copy


def current():
    """The SeldonMetrics instance of this server, or None (outside the wrapper, or this step off)."""
    return _instances[-1] if _instances else None


def _series(metric, method):
    tags = dict(metric.get("tags", {}), method=method)
    return (os.getpid(), metric.get("type", "COUNTER"), metric["key"], tuple(sorted(tags.items())))


def _changes(metric, series):
    kind = series[1]
    return (kind == "TIMER" or series not in _stored or (kind == "COUNTER" and metric["value"] != 0)
            or (kind == "GAUGE" and metric["value"] != _stored[series]))


class _OwnEntry:
    """The shared dict as `update` reads and writes it: this process's entry, remembered as last
    written (only this process writes it), so that an update costs one round trip, the write."""

    def __init__(self, shared):
        self.shared = shared

    def get(self, worker_id, default):
        if worker_id not in _written:
            _written[worker_id] = self.shared.get(worker_id, default)
        return dict(_written[worker_id])  # seldon-core replaces items, never changes one in place

    def __setitem__(self, worker_id, worker_data):
        self.shared[worker_id] = worker_data
        _written[worker_id] = worker_data


class _WithoutManagerLock:
    """The store as seldon-core's `update` uses it, minus the Manager lock and the read back."""

    _lock = contextlib.nullcontext()

    def __init__(self, store):
        self.data, self.worker_id_func, self._update_hist = _OwnEntry(store.data), store.worker_id_func, \
            store._update_hist


def install():
    from seldon_core.metrics import SeldonMetrics

    original_init, original_update, original_clear = SeldonMetrics.__init__, SeldonMetrics.update, \
        SeldonMetrics.clear

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        _instances.append(self)

    def update(self, custom_metrics, method):
        with _update_lock:
            changed = [(m, series) for m in custom_metrics if _changes(m, series := _series(m, method))]
            if not changed:
                return
            original_update(_WithoutManagerLock(self),
                            [dict(m, tags=dict(m.get("tags", {}))) for m, _ in changed], method)
            for metric, series in changed:
                _stored[series] = metric["value"]

    def clear(self):
        # The wrapper drops this process's series (its worker exits): forget what was stored.
        pid = os.getpid()
        for series in [s for s in _stored if s[0] == pid]:
            del _stored[series]
        _written.pop(pid, None)
        original_clear(self)

    SeldonMetrics.__init__, SeldonMetrics.update, SeldonMetrics.clear = __init__, update, clear
