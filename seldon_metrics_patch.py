"""Two adjustments to seldon-core 1.17.1's `SeldonMetrics` (the store behind :6000/metrics),
applied when DockerModel is imported by the wrapper.

1. `update` skips the round trips to its multiprocessing Manager when the update would change
   nothing: an empty list, COUNTER increments of 0 for series this process already has, GAUGEs equal
   to what this process last stored. The wrapper calls `update` twice per request; on the prediction
   path those calls are no-ops (only feedback changes the figures) and the IPC was about three
   quarters of a request's cost.
2. `update` is serialised between the threads of a process: seldon-core reads this process's series
   from the Manager, adds, and writes them back, so two threads updating at once (GUNICORN_THREADS>1)
   would lose one of the increments.
3. The instance the wrapper creates is remembered, so that request_guard.py, which answers REST
   feedback itself, can record the same metrics the wrapper would.
"""
import os
import threading

from seldon_core import metrics as _seldon_metrics

_SeldonMetrics = _seldon_metrics.SeldonMetrics
_original_init = _SeldonMetrics.__init__
_original_update = _SeldonMetrics.update
_instances = []
_stored = {}  # (pid, type, key, tags) -> last value this process stored
_update_lock = threading.Lock()  # a forked worker gets a fresh, unlocked copy


def _init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    _instances.append(self)


def _series(metric, method):
    tags = dict(metric.get("tags", {}), method=method)
    return (os.getpid(), metric.get("type", "COUNTER"), metric["key"], tuple(sorted(tags.items())))


def _changes_something(custom_metrics, method):
    for metric in custom_metrics:
        series = _series(metric, method)
        kind = series[1]
        if kind == "TIMER" or series not in _stored:
            return True
        if kind == "COUNTER" and metric["value"] != 0:
            return True
        if kind == "GAUGE" and metric["value"] != _stored[series]:
            return True
    return False


def _update(self, custom_metrics, method):
    with _update_lock:
        if not _changes_something(custom_metrics, method):
            return
        _original_update(self, [dict(m, tags=dict(m.get("tags", {}))) for m in custom_metrics], method)
        for metric in custom_metrics:
            _stored[_series(metric, method)] = metric["value"]


def _clear(self):
    # The wrapper drops this process's series (its worker exits): forget what was stored.
    pid = os.getpid()
    for series in [s for s in _stored if s[0] == pid]:
        del _stored[series]
    _original_clear(self)


def current():
    """The SeldonMetrics instance of this server, or None outside the wrapper."""
    return _instances[-1] if _instances else None


_original_clear = _SeldonMetrics.clear
_SeldonMetrics.__init__ = _init
_SeldonMetrics.update = _update
_SeldonMetrics.clear = _clear
