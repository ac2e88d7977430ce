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
from kit.replay import replay_concurrently, replay_exactly_once, totals_across
from kit.server import container_running
from tests import CURRENT
from tests.containers import docker, engine_available, model_container, wait_healthy

pytestmark = [pytest.mark.container,
              pytest.mark.skipif(not engine_available(), reason="needs a Docker engine")]

SCALE = REPO_ROOT / "scripts" / "serve" / "scale.sh"
SERVE = REPO_ROOT / "scripts" / "serve" / "serve.sh"
BALANCER = "http://127.0.0.1:9000"  # make scale's one URL, in front of the replicas 9001-9003
REPLICA_URLS = [f"http://127.0.0.1:900{i}" for i in (1, 2, 3)]


def expected_outcomes(rows_labels, model_predictions):
    counts = dict.fromkeys(OUTCOMES, 0)
    for (_, label), predicted in zip(rows_labels, model_predictions):
        counts[outcome_of(int(predicted), int(label))] += 1
    return counts


@pytest.fixture(scope="module")
def replicas():
    """Three replicas of two workers each behind the balancer (make scale): its URL and the replicas'
    metrics. Afterwards :9000 is given back to the single container if it answered there before."""
    single_was_serving = container_running("docker-model")
    subprocess.run(["bash", str(SCALE), "up", "3", "2"], check=True, capture_output=True)
    yield BALANCER, [f"http://127.0.0.1:600{i}/metrics" for i in (1, 2, 3)]
    subprocess.run(["bash", str(SCALE), "down"], check=True, capture_output=True)
    if single_was_serving:
        subprocess.run(["bash", str(SERVE), "start"], check=True, capture_output=True)


def _scale_replay(replicas, test_set, repeats):
    url, metrics = replicas
    X, y = test_set
    before = totals_across(metrics)
    acknowledged, failures = replay_concurrently([url], X, y, repeats=repeats, clients=8)
    after = totals_across(metrics)
    assert failures == []
    assert acknowledged == repeats * len(X)
    assert {o: after[o] - before[o] for o in OUTCOMES} == {o: repeats * n for o, n in CURRENT.items()}


def test_three_replicas_of_two_workers_count_exactly(replicas, test_set):
    _scale_replay(replicas, test_set, repeats=1)


def test_every_replica_answers_through_the_balancer(replicas, test_set):
    url, metrics = replicas
    X, _ = test_set
    before = [sum(outcome_totals(m).values()) for m in metrics]
    client = ModelClient(url)
    for row in X[:30]:
        client.feedback([row], [1])
    shares = [sum(outcome_totals(m).values()) - b for m, b in zip(metrics, before)]
    assert sum(shares) == 30 and all(share >= 5 for share in shares), shares


def _predict_under_load(url, row, seconds, during):
    """Predictions from six clients for `seconds`, `during()` run after one second; (answered, errors)."""
    answered, errors, stop = [0], [], threading.Event()

    def load():
        session = requests.Session()
        while not stop.is_set():
            try:
                answer = session.post(url + "/api/v1.0/predictions", json={"data": {"ndarray": [row]}}, timeout=30)
                if answer.status_code == 200 and "ndarray" in answer.json()["data"]:
                    answered[0] += 1
                else:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
            except requests.RequestException as err:
                errors.append(repr(err))

    clients = [threading.Thread(target=load) for _ in range(6)]
    for c in clients:
        c.start()
    time.sleep(1)
    during()
    time.sleep(seconds - 1)
    stop.set()
    for c in clients:
        c.join()
    return answered[0], errors


def test_a_replica_killed_under_load_fails_over_unseen(replicas, test_set):
    url, _ = replicas
    X, _ = test_set
    answered, errors = _predict_under_load(url, list(X[0]), 4, lambda: docker("kill", "docker-model-r2"))
    docker("start", "docker-model-r2")
    wait_healthy(REPLICA_URLS[1])
    print(f"replica 2 killed under load: {answered} predictions answered, {len(errors)} errors")
    assert errors == [] and answered > 100


def test_the_balancer_never_sends_a_feedback_call_twice(replicas, test_set):
    """Replica 2 frozen: the calls it holds time out at the balancer (10 s), which answers them 503
    and sends none to another replica; thawed, replica 2 answers them: each is counted once."""
    url, metrics = replicas
    X, y = test_set
    before = totals_across(metrics)
    docker("pause", "docker-model-r2")
    try:
        statuses = []

        def send(i):
            answer = requests.post(url + "/api/v1.0/feedback", json=feedback_payload([X[i]], [y[i]]), timeout=30)
            statuses.append(answer.status_code)

        senders = [threading.Thread(target=send, args=(i,)) for i in range(6)]
        for s in senders:
            s.start()
        for s in senders:
            s.join()
    finally:
        docker("unpause", "docker-model-r2")
    wait_healthy(REPLICA_URLS[1])
    after = totals_across(metrics)
    assert sorted(statuses).count(503) >= 1, statuses  # some reached the frozen replica
    assert sum(after.values()) - sum(before.values()) == 6, (statuses, before, after)


def test_feedback_counts_once_through_whichever_replica_it_is_sent(replicas, test_set):
    """A prediction's feedback, sent with its response through the balancer and to every replica
    directly, is counted once, in the log of the replica whose puid it carries."""
    url, metrics = replicas
    X, y = test_set
    before = totals_across(metrics)
    answer = ModelClient(url).predict([X[3]])
    owner = answer["meta"]["puid"].rsplit(".", 1)[1]
    assert owner in ("r1", "r2", "r3")
    for target in [url] * 3 + REPLICA_URLS:
        ModelClient(target).feedback([X[3]], [y[3]], response=answer)
    assert sum(totals_across(metrics).values()) - sum(before.values()) == 1
    rows = [json.loads(line) for line in docker("exec", f"docker-model-{owner}", "python3", "-m",
                                                 "serving.feedback_log").splitlines()]
    assert rows[-1]["model_version"] == answer["meta"]["tags"]["model_version"]
    with pytest.raises(ModelError) as refused:  # refused by its owner, through another replica
        other = next(u for u, r in zip(REPLICA_URLS, ("r1", "r2", "r3")) if r != owner)
        ModelClient(other).feedback([X[3]], [1 - y[3]], response=answer)
    assert refused.value.status == 409


def test_grpc_through_the_balancer_counts_feedback_once(replicas):
    """gRPC on :5000 through nginx: a puid on the prediction, its feedback counted once."""
    _, metrics = replicas
    before = totals_across(metrics)
    done = subprocess.run([str(REPO_ROOT / "venvs" / "serving" / "bin" / "python"),
                           str(REPO_ROOT / "tests" / "grpc_exactly_once_check.py"), "127.0.0.1:5000"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["puid"].rsplit(".", 1)[1] in ("r1", "r2", "r3")
    assert [result["answers"][k][0] for k in ("first", "again", "again through another", "other label")] == \
        ["OK", "OK", "OK", "ALREADY_EXISTS"]
    assert sum(totals_across(metrics).values()) - sum(before.values()) == 1


def test_a_client_retrying_through_a_replica_killed_mid_replay_counts_exactly(replicas, test_set):
    """Predictions and their feedback, with the response, from six clients through the balancer;
    replica 2 is killed after two seconds and started again three seconds later; every call
    without an answer is sent again. The totals are one replay's, exactly."""
    url, metrics = replicas
    X, y = test_set
    before = totals_across(metrics)
    result = {}
    replay = threading.Thread(target=lambda: result.update(
        zip(("acknowledged", "sent_again"), replay_exactly_once(url, X, y, clients=6))))
    replay.start()
    time.sleep(2)
    docker("kill", "docker-model-r2")
    time.sleep(3)  # feedback for its predictions waits meanwhile: 503, sent again
    docker("start", "docker-model-r2")
    replay.join()
    wait_healthy(REPLICA_URLS[1])
    after = totals_across(metrics)
    print(f"replica 2 killed mid-replay: {result['acknowledged']} acknowledged, "
          f"{result['sent_again']} calls sent again, counted {sum(after.values()) - sum(before.values())}")
    assert result["acknowledged"] == len(X)
    assert {o: after[o] - before[o] for o in OUTCOMES} == CURRENT


@pytest.mark.reliability
def test_ten_replays_from_eight_clients_count_exactly_ten_times(replicas, test_set):
    _scale_replay(replicas, test_set, repeats=10)


@pytest.mark.reliability
def test_rolling_restart_of_replicas_loses_and_doubles_nothing(replicas, test_set):
    url, metrics = replicas
    X, y = test_set
    before = totals_across(metrics)
    result = {}
    replay = threading.Thread(target=lambda: result.update(zip(
        ("acknowledged", "failures"), replay_concurrently([url], X, y, repeats=4, clients=6, retry_refused_for=30))))
    replay.start()
    for i in (1, 2, 3):
        time.sleep(1)
        docker("restart", "-t", "10", f"docker-model-r{i}")
    replay.join()
    for replica in REPLICA_URLS:
        wait_healthy(replica)
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


def test_a_full_feedback_volume_refuses_feedback_with_507_and_recovers(test_set):
    """The feedback log on a 2 MB volume, filled but for about 200 KB: feedback until it is refused."""
    X, y = test_set
    with model_container("docker-model-full-disk", 9026, 6026, feedback_tmpfs_size="2m") as (url, metrics):
        docker("exec", "docker-model-full-disk", "python3", "-c",
               "import os; d = '/var/lib/docker-model'; st = os.statvfs(d); "
               "open(d + '/filler', 'wb').write(bytes(st.f_bavail * st.f_frsize - 200_000))")
        client = ModelClient(url, timeout=10)
        acknowledged, refusal = 0, None
        for i in range(20_000):
            try:
                client.feedback([X[i % len(X)]], [int(y[i % len(X)])])
                acknowledged += 1
            except ModelError as err:
                refusal = err
                break
        assert refusal is not None and refusal.status == 507, refusal
        assert "full" in refusal.message and "send it again" in refusal.message
        # Each commit appends a few 4 KB pages to the write-ahead log: 200 KB last a dozen calls or so.
        assert sum(outcome_totals(metrics).values()) == acknowledged >= 5
        assert len(client.predict(X[:10])["data"]["ndarray"]) == 10  # predictions go on
        status = requests.get(url + "/health/status", timeout=5)
        assert status.status_code == 200 and status.json()["jsonData"]["feedback_log"].startswith("unwritable")
        writable = [v for n, _, v in parse_samples(requests.get(metrics, timeout=5).text) if n == "feedback_log_writable"]
        assert writable == [0.0]

        docker("exec", "docker-model-full-disk", "rm", "/var/lib/docker-model/filler")
        client.feedback([X[0]], [int(y[0])])
        assert sum(outcome_totals(metrics).values()) == acknowledged + 1
        assert requests.get(url + "/health/status", timeout=5).json()["jsonData"]["feedback_log"] == "writable"
        assert [v for n, _, v in parse_samples(requests.get(metrics, timeout=5).text)
                if n == "feedback_log_writable"] == [1.0]
