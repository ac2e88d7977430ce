"""Prometheus for the notebooks and tests: start it (monitoring/monitor.sh), query it, wait on its rules.

Prometheus scrapes the model's exposition (port 6000, replicas 6001..6009) every 2 s and evaluates
monitoring/rules/*.yml: recording rules model:accuracy:ratio, model:precision:ratio, ... and the
alerts (ModelAccuracyLow, ModelFeedbackStopped, ModelTargetDown, ModelPredictionErrors, ...).
"""
import os
import subprocess
import time

import numpy as np

import requests

from kit import REPO_ROOT
from kit.progress import run, wait_until
from serving.feedback_log import OUTCOMES

PROMETHEUS_URL = os.environ.get("PROMETHEUS_URL", "http://127.0.0.1:9090")
MONITOR = REPO_ROOT / "monitoring" / "monitor.sh"
# Prometheus's --query.lookback-delta (monitoring/monitor.sh): a series without a sample for that long
# is no longer in query results.
LOOKBACK_SECONDS = 30


class MoreRowsThanExported(RuntimeError):
    """Prometheus counts more feedback rows than the servers export."""


class Prometheus:
    """The HTTP API of one Prometheus server (/api/v1/...)."""

    def __init__(self, url=PROMETHEUS_URL, timeout=10):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _get(self, path, **params):
        response = self.session.get(f"{self.url}/api/v1/{path}", params=params, timeout=self.timeout)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def is_ready(self):
        try:
            return self.session.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def query(self, expr, at=None):
        """An instant query: [(labels, value)], labels without __name__."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("query", **params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [({k: v for k, v in r["metric"].items() if k != "__name__"}, float(r["value"][1]))
                for r in data["result"]]

    def value(self, expr, at=None):
        """The value of a query that yields one series, else None (no data yet)."""
        result = self.query(expr, at)
        if len(result) > 1:
            raise ValueError(f"{expr} gives {len(result)} series, expected one")
        return result[0][1] if result else None

    def query_range(self, expr, start, end, step=2):
        """[(labels, [(timestamp, value), ...])] between two Unix times."""
        data = self._get("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)
        return [({k: v for k, v in r["metric"].items() if k != "__name__"},
                 [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]

    def outcomes(self, at=None, instance=None):
        """The confusion matrix as Prometheus sees it: the recording rule model:feedback_outcomes:sum
        (all replicas), or the same sum for one server's `instance` ("127.0.0.1:6000")."""
        expr = ("model:feedback_outcomes:sum" if instance is None else
                f'sum by (outcome) (feedback_outcomes_total{{job="model",instance="{instance}"}})')
        counts = dict.fromkeys(OUTCOMES, 0)
        for labels, value in self.query(expr, at):
            counts[labels["outcome"]] = int(value)
        return counts

    def instance_of(self, metrics_url):
        """The `instance` label of the model target scraped at this URL (matched by port)."""
        port = metrics_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[-1]
        for target in self.targets():
            if target["labels"]["instance"].rsplit(":", 1)[-1] == port:
                return target["labels"]["instance"]
        raise LookupError(f"Prometheus scrapes no model target on port {port}")

    def alerts(self):
        """Alerts pending or firing now: [{"labels":..., "state":..., "activeAt":...}]."""
        return self._get("alerts")["alerts"]

    def rules(self):
        """Every rule Prometheus has loaded, with its state: [{"name":..., "type":..., "health":...}]."""
        return [rule for group in self._get("rules")["groups"] for rule in group["rules"]]

    def targets(self, job="model"):
        return [t for t in self._get("targets")["activeTargets"] if t["labels"].get("job") == job]

    def wait_for(self, expr, predicate=lambda v: v is not None, timeout=60, interval=0.5):
        """Polls a one-series query until predicate(value) holds; returns the value or raises."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.value(expr)
            if predicate(v):
                return v
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr} is still {v} after {timeout} s")
            time.sleep(interval)

    def wait_for_rows(self, total, timeout=30, instance=None):
        """Waits until the feedback total Prometheus sees (model:feedback_rows:sum, or one server's)
        equals `total`, the sum read from the servers' own expositions: then Prometheus has scraped
        every row they exported. Raises MoreRowsThanExported as soon as it sees more."""
        expr = ("model:feedback_rows:sum" if instance is None else
                f'sum(feedback_outcomes_total{{job="model",instance="{instance}"}})')
        seen = int(self.wait_for(expr, lambda v: v is not None and int(v) >= total, timeout))
        if seen > total:
            raise MoreRowsThanExported(
                f"Prometheus counts {seen - total} feedback rows more than expected ({expr}): "
                "another client is sending feedback to the same server(s). Run this again when it is idle.")
        return seen

    def exported_rows(self, instance=None):
        """Feedback rows in the expositions of every model target that is up (or of one), read
        directly, not through Prometheus."""
        from kit.client import outcome_totals

        return sum(sum(outcome_totals(t["scrapeUrl"]).values()) for t in self.targets()
                   if t["health"] == "up" and instance in (None, t["labels"]["instance"]))

    def caught_up(self, timeout=LOOKBACK_SECONDS + 15, instance=None):
        """Waits until Prometheus has scraped every feedback row the servers (or one) export;
        returns that total.

        Prometheus may also count more, for a while: each server start exports series of its own,
        and those of a server that went away just before Prometheus stopped (as at the end of
        `make run-notebooks`) got no staleness marker, so after a restart they count until they
        are older than the lookback (LOOKBACK_SECONDS). Raises, after `timeout`, while other
        clients keep sending feedback."""
        # In a list: a total of 0 rows is an answer too.
        scraped = wait_until(lambda: [int(self.wait_for_rows(self.exported_rows(instance), timeout=3, instance=instance))],
                             "Prometheus to have scraped every feedback row the servers export", timeout,
                             not_yet=(TimeoutError, MoreRowsThanExported))
        return scraped[0]

    def frame(self, exprs, start, end, step=2):
        """A pandas DataFrame of range queries, one column per {name: expr} (one series each),
        indexed by seconds since `start`."""
        import pandas as pd

        columns = {}
        for name, expr in exprs.items():
            for _, values in self.query_range(expr, start, end, step)[:1]:
                columns[name] = pd.Series({t - start: v for t, v in values})
        return pd.DataFrame(columns).sort_index()

    def alert_timeline(self, alertname, start, end, step=1):
        """When an alert was pending and firing between two times, from Prometheus's ALERTS series:
        {"pending": (first, last), "firing": (first, last)} with Unix times, states never seen absent."""
        timeline = {}
        for labels, values in self.query_range(f'ALERTS{{alertname="{alertname}"}}', start, end, step):
            times = [t for t, v in values if v == 1]
            if times:
                state = labels["alertstate"]
                old = timeline.get(state, (times[0], times[-1]))
                timeline[state] = (min(old[0], times[0]), max(old[1], times[-1]))
        return timeline

    def fired_between(self, start, end, step=1):
        """Names of the alerts that were firing at some time between start and end."""
        series = self.query_range('ALERTS{alertstate="firing"}', start, end, step)
        return sorted({labels["alertname"] for labels, values in series if values})


def ensure_prometheus(prometheus=None):
    """Starts Prometheus (and the probe exporter) through monitoring/monitor.sh unless it answers."""
    prometheus = prometheus or Prometheus()
    if prometheus.is_ready():
        return f"Prometheus already answers on {prometheus.url}"
    print("starting Prometheus (the first time, Debian's package is installed: about a minute)")
    run(["bash", str(MONITOR), "start"])
    return f"started Prometheus on {prometheus.url}"


def stop_prometheus():
    subprocess.run(["bash", str(MONITOR), "stop"], check=True, capture_output=True)


def wait_for_targets(prometheus, n=1, timeout=30):
    """Waits until at least n model targets are up (the target list refreshes every 5 s)."""
    def up():
        targets = [t for t in prometheus.targets() if t["health"] == "up"]
        return targets if len(targets) >= n else None

    return wait_until(up, f"{n} model target(s) to be up in Prometheus", timeout, interval=0.5)


def paced_calls(call, rows_per_second, n_rows=None, stop=None, max_seconds=120, min_rows=0):
    """Calls call(i) for i = 0, 1, ... at a steady pace of rows_per_second. Stops after n_rows
    calls, or as soon as stop() returns true (checked once a second, after at least min_rows), and
    in any case after max_seconds. Returns (calls made, start time, end time)."""
    start = time.time()
    sent, next_check = 0, start + 1
    while n_rows is None or sent < n_rows:
        now = time.time()
        if now - start > max_seconds:
            break
        if stop is not None and sent >= min_rows and now >= next_check:
            next_check = now + 1
            if stop():
                break
        call(sent)
        sent += 1
        delay = start + sent / rows_per_second - time.time()
        if delay > 0:
            time.sleep(delay)
    return sent, start, time.time()


def feedback_wave(client, X, y, rows_per_second, n_rows=None, flip=False, stop=None, max_seconds=120,
                  min_rows=0):
    """Sends one feedback call per row at a steady pace, cycling through (X, y) (paced_calls says
    when it stops). flip: send the opposite labels (a degraded stretch: the model now looks wrong
    93 % of the time). Returns (rows sent, start time, end time)."""
    until = f"{n_rows} rows" if n_rows else "the alert changes state"
    print(f"sending {'flipped' if flip else 'true'} labels, one row a call, {rows_per_second} rows/s, until {until} "
          f"(at most {max_seconds} s)", flush=True)

    def send(i):
        label = 1 - int(y[i % len(X)]) if flip else int(y[i % len(X)])
        client.feedback([X[i % len(X)]], [label])

    return paced_calls(send, rows_per_second, n_rows, stop, max_seconds, min_rows)


def prediction_wave(client, X, rows_per_second, change=None, n_rows=None, stop=None, max_seconds=120,
                    min_rows=0):
    """Asks for one prediction per row at a steady pace, cycling through X in a shuffled order,
    each row first passed through change() if given (a drifted stretch). Returns (rows sent,
    start time, end time)."""
    until = f"{n_rows} rows" if n_rows else "the alert changes state"
    what = getattr(change, "label", "changed") if change else "unchanged"
    print(f"predicting {what} rows, one a call, {rows_per_second} rows/s, until {until} (at most {max_seconds} s)",
          flush=True)
    order = np.random.default_rng(0).permutation(len(X))

    def send(i):
        row = X[order[i % len(X)]][None, :]
        client.predict(change(row) if change else row)

    return paced_calls(send, rows_per_second, n_rows, stop, max_seconds, min_rows)
