"""A small HTTP client for the served model: predictions, feedback, and its Prometheus counters."""
import os
import time

import requests

from serving.feedback_log import OUTCOMES

MODEL_URL = os.environ.get("MODEL_URL", "http://localhost:9000")
METRICS_URL = os.environ.get("METRICS_URL", "http://localhost:6000/metrics")
# The server closes a kept-alive connection idle for 2 s (GUNICORN_KEEPALIVE); one idle for longer
# than this is not reused, so that a request is never sent just as the server closes its connection
# (the client would read "Remote end closed connection", and a POST is not sent twice).
REUSE_IDLE_SECONDS = 1.0


class ModelError(Exception):
    """The server refused a request: carries its HTTP status and the server's own message."""

    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def prediction_payload(rows):
    return {"data": {"ndarray": [[float(v) for v in row] for row in rows]}}


def feedback_payload(rows, labels, response=None):
    """Seldon's Feedback message; with `response`, the prediction's answer, it is counted once however
    often it is sent."""
    payload = {"request": prediction_payload(rows), "truth": {"data": {"ndarray": [int(t) for t in labels]}}}
    if response is not None:
        payload["response"] = response
    return payload


class ModelClient:
    def __init__(self, base_url=MODEL_URL, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self._last_used = 0.0

    def _fresh_after_idle(self):
        if time.monotonic() - self._last_used > REUSE_IDLE_SECONDS:
            self.session.close()  # its pooled connections; the next request opens a new one
        return self.session

    def _post(self, path, payload):
        try:
            response = self._fresh_after_idle().post(self.base_url + path, json=payload, timeout=self.timeout)
        finally:
            self._last_used = time.monotonic()
        if response.status_code != 200:
            try:
                message = response.json()["status"]["info"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            raise ModelError(response.status_code, message)
        return response.json()

    def predict(self, rows):
        """The full response to a prediction request for these rows."""
        return self._post("/api/v1.0/predictions", prediction_payload(rows))

    def feedback(self, rows, labels, response=None):
        """The full response to a feedback call carrying these rows and their true labels, and, if
        given, the response their prediction was answered with."""
        return self._post("/api/v1.0/feedback", feedback_payload(rows, labels, response))

    def is_up(self):
        try:
            return self._fresh_after_idle().get(self.base_url + "/health/ping", timeout=2).status_code == 200
        except requests.RequestException:
            return False
        finally:
            self._last_used = time.monotonic()


def parse_samples(text):
    """(name, labels, value) for each sample of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, rest = head.partition("{")
        labels = {}
        for item in filter(None, rest.rstrip("}").split('",')):
            key, _, val = item.partition("=")
            labels[key.strip(",")] = val.strip('"')
        samples.append((name, labels, float(value)))
    return samples


def outcomes_in(text):
    """The confusion matrix a metrics page holds: feedback_outcomes_total summed by outcome."""
    totals = dict.fromkeys(OUTCOMES, 0)
    for name, labels, value in parse_samples(text):
        if name == "feedback_outcomes_total":
            totals[labels["outcome"]] += int(value)
    return totals


def outcome_totals(metrics_url=METRICS_URL):
    """The confusion matrix as the server exports it now."""
    return outcomes_in(requests.get(metrics_url, timeout=5).text)
