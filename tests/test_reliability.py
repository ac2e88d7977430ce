"""Exact counts under scale-out, no acknowledged feedback lost to a crash, graceful shutdown.

The quick checks run in `make test`; the long load and fault runs (marked `reliability`) in
`make test-reliability`. All traffic goes to loopback ports of the project's own containers.
"""
import json
import subprocess
import threading
import time

import pytest
import requests

from DockerModel import DockerModel
from serving.feedback_log import OUTCOMES, outcome_of
from kit import REPO_ROOT
from kit.client import ModelClient, ModelError, feedback_payload, outcome_totals, parse_samples
from kit.replay import replay_concurrently, totals_across
from tests import CURRENT
from tests.containers import docker, engine_available, model_container, wait_healthy

pytestmark = [pytest.mark.container,
              pytest.mark.skipif(not engine_available(), reason="needs a Docker engine")]

SCALE = REPO_ROOT / "scripts" / "serve" / "scale.sh"


def expected_outcomes(rows_labels, model_predictions):
    counts = dict.fromkeys(OUTCOMES, 0)
    for (_, label), predicted in zip(rows_labels, model_predictions):
        counts[outcome_of(int(predicted), int(label))] += 1
    return counts


@pytest.fixture(scope="module")
def replicas():
    """Three replicas of two workers each (make scale), stopped afterwards unless already running."""
    was_running = all(ModelClient(f"http://127.0.0.1:900{i}").is_up() for i in (1, 2, 3))
    subprocess.run(["bash", str(SCALE), "up", "3", "2"], check=True, capture_output=True)
    yield [f"http://127.0.0.1:900{i}" for i in (1, 2, 3)], [f"http://127.0.0.1:600{i}/metrics" for i in (1, 2, 3)]
    if not was_running:
        subprocess.run(["bash", str(SCALE), "down"], check=True, capture_output=True)


def _scale_replay(replicas, test_set, repeats):
    urls, metrics = replicas
    X, y = test_set
    before = totals_across(metrics)
    acknowledged, failures = replay_concurrently(urls, X, y, repeats=repeats, clients=8)
    after = totals_across(metrics)
    assert failures == []
    assert acknowledged == repeats * len(X)
    assert {o: after[o] - before[o] for o in OUTCOMES} == {o: repeats * n for o, n in CURRENT.items()}


def test_three_replicas_of_two_workers_count_exactly(replicas, test_set):
    _scale_replay(replicas, test_set, repeats=1)


@pytest.mark.reliability
def test_ten_replays_from_eight_clients_count_exactly_ten_times(replicas, test_set):
    _scale_replay(replicas, test_set, repeats=10)


@pytest.mark.reliability
def test_rolling_restart_of_replicas_loses_and_doubles_nothing(replicas, test_set):
    urls, metrics = replicas
    X, y = test_set
    before = totals_across(metrics)
    result = {}
    replay = threading.Thread(target=lambda: result.update(zip(
        ("acknowledged", "failures"), replay_concurrently(urls, X, y, repeats=4, clients=6, retry_refused_for=30))))
    replay.start()
    for i in (1, 2, 3):
        time.sleep(1)
        docker("restart", "-t", "10", f"docker-model-r{i}")
    replay.join()
    for url in urls:
        wait_healthy(url)
    after = totals_across(metrics)
    assert result["failures"] == []
    assert {o: after[o] - before[o] for o in OUTCOMES} == {o: 4 * n for o, n in CURRENT.items()}


def test_killed_container_loses_nothing_acknowledged(test_set):
    X, y = test_set
    with model_container("docker-model-crash", 9021, 6021) as (url, metrics):
        local = DockerModel(feedback_db=":memory:").predict(X)
        client = ModelClient(url, timeout=5)
        acked = []
        stop = threading.Event()

        def replay():
            for i, (row, label) in enumerate(zip(X, y)):
                if stop.is_set():
                    return
                try:
                    client.feedback([row], [label])
                except (ModelError, OSError):
                    return
                acked.append(i)

        sender = threading.Thread(target=replay)
        sender.start()
        while len(acked) < 150:
            time.sleep(0.01)
        docker("kill", "-s", "KILL", "docker-model-crash")
        stop.set()
        sender.join(timeout=30)
        n = len(acked)
        assert acked == list(range(n))
        docker("start", "docker-model-crash")
        wait_healthy(url)
        restored = outcome_totals(metrics)
        pairs = list(zip(X, y))
        lower = expected_outcomes(pairs[:n], local[:n])
        upper = expected_outcomes(pairs[:n + 1], local[:n + 1])  # the one call in flight at the kill
        assert restored in (lower, upper), (n, restored)
        # The replay then finishes from where it stopped: exactly one replay's worth in total.
        done = sum(restored.values())
        for row, label in pairs[done:]:
            client.feedback([row], [label])
        assert outcome_totals(metrics) == CURRENT


def test_killed_worker_is_replaced_and_counts_stay_exact(test_set):
    X, y = test_set
    with model_container("docker-model-worker-kill", 9022, 6022) as (url, metrics):
        client = ModelClient(url)
        client.feedback(X[:200], y[:200])
        half = outcome_totals(metrics)
        workers = {labels["worker_id"] for name, labels, _ in parse_samples(requests.get(metrics).text)
                   if name == "feedback_outcomes_total"}
        victim = sorted(workers)[0]
        docker("exec", "docker-model-worker-kill", "sh", "-c", f"kill -9 {victim}")
        client = ModelClient(url)  # a kept-alive connection to the killed worker died with it
        for row, label in zip(X[200:], y[200:]):
            client.feedback([row], [label])  # answered by the other worker, then by the new one too
        assert sum(half.values()) == 200
        assert outcome_totals(metrics) == CURRENT


@pytest.mark.reliability
def test_sigterm_finishes_the_request_in_flight_and_keeps_it(test_set):
    X, y = test_set
    rows = [X[i % len(X)] for i in range(10_000)]
    labels = [y[i % len(y)] for i in range(10_000)]
    body = json.dumps(feedback_payload(rows, labels))  # serialised first, so sending starts at once
    with model_container("docker-model-drain", 9023, 6023) as (url, metrics):
        answers = []
        sender = threading.Thread(target=lambda: answers.append(requests.post(
            url + "/api/v1.0/feedback", data=body, headers={"Content-Type": "application/json"}, timeout=60)))
        sender.start()
        time.sleep(0.2)  # the 10,000-row call is being processed now
        started = time.monotonic()
        docker("stop", "-t", "20", "docker-model-drain")
        stopped_in = time.monotonic() - started
        sender.join()
        assert answers[0].status_code == 200, answers[0].text[:300]
        assert stopped_in < 10, f"took {stopped_in:.1f} s to stop"
        docker("start", "docker-model-drain")
        wait_healthy(url)
        assert sum(outcome_totals(metrics).values()) == 10_000
        print(f"SIGTERM: stopped in {stopped_in:.2f} s, the call in flight answered 200 and was kept")


@pytest.mark.reliability
def test_mixed_load_has_no_errors_and_exact_totals(test_set):
    X, y = test_set
    with model_container("docker-model-load", 9024, 6024) as (url, metrics):
        failures = []

        def predictions():
            c = ModelClient(url)
            for i in range(600):
                try:
                    c.predict([X[i % len(X)]])
                except (ModelError, OSError) as err:
                    failures.append(str(err))

        threads = [threading.Thread(target=predictions) for _ in range(4)]
        for t in threads:
            t.start()
        acknowledged, feedback_failures = replay_concurrently([url], X, y, repeats=3, clients=4)
        for t in threads:
            t.join()
        assert failures == [] and feedback_failures == []
        assert outcome_totals(metrics) == {o: 3 * n for o, n in CURRENT.items()}


@pytest.mark.reliability
def test_healthcheck_reports_a_hung_model():
    with model_container("docker-model-hung", 9025, 6025, "--health-interval", "1s",
                         "--health-timeout", "1s", "--health-retries", "2", "--health-start-period", "1s") as (url, _):
        processes = docker("exec", "docker-model-hung", "sh", "-c",
                           "for p in /proc/[0-9]*; do echo ${p#/proc/} $(tr '\\0' ' ' < $p/cmdline); done")
        gunicorn = [line.split()[0] for line in processes.splitlines() if "-m serving" in line]
        docker("exec", "docker-model-hung", "sh", "-c", "kill -STOP " + " ".join(gunicorn))
        deadline = time.monotonic() + 20
        status = ""
        while time.monotonic() < deadline and status != "unhealthy":
            status = docker("inspect", "-f", "{{.State.Health.Status}}", "docker-model-hung")
            time.sleep(0.5)
        docker("exec", "docker-model-hung", "sh", "-c", "kill -CONT " + " ".join(gunicorn))
        assert status == "unhealthy"
