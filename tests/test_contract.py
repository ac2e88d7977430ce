"""The served model over HTTP (and gRPC), as users and the article's client call it."""
import http.client
import json
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from serving.feedback_log import ratios
from kit import REPO_ROOT
from kit.client import METRICS_URL, outcome_totals, parse_samples
from kit.replay import counted_since
from tests import CURRENT, served_with

pytestmark = pytest.mark.container

CORPUS = json.loads((Path(__file__).parent / "bad_requests.json").read_text())["requests"]


def test_article_prediction(client, test_set):
    X, _ = test_set
    body = client.predict([X[0]])
    assert body["data"] == {"names": [], "ndarray": [0]}
    assert body["meta"]["tags"]["shape_input_data"] == "(1, 30)"
    assert {m["key"] for m in body["meta"]["metrics"]} >= {"accuracy", "precision", "recall", "f1_score"}


def test_batch_prediction_matches_local_model(client, test_set):
    import joblib

    X, _ = test_set
    expected = joblib.load(REPO_ROOT / "models" / "binary-lr.joblib").predict(X)
    body = client.predict(X)
    assert body["data"]["ndarray"] == expected.tolist()
    assert body["meta"]["tags"]["shape_input_data"] == "(513, 30)"


def test_tensor_and_integer_payloads_are_valid(client, test_set):
    X, _ = test_set
    tensor = {"data": {"tensor": {"shape": [2, 30], "values": X[:2].ravel().tolist()}}}
    r = requests.post(client.base_url + "/api/v1.0/predictions", json=tensor)
    assert r.status_code == 200, r.text
    ints = {"data": {"ndarray": [[int(v) for v in X[0]]]}}
    assert requests.post(client.base_url + "/api/v1.0/predictions", json=ints).status_code == 200


def test_browsers_may_call_it_from_another_origin(client, test_set):
    X, _ = test_set
    url, origin = client.base_url + "/api/v1.0/predictions", "http://notebook.example:8888"
    preflight = requests.options(url, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200 and "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    r = requests.post(url, json={"data": {"ndarray": [list(X[0])]}}, headers={"Origin": origin})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == origin


def test_ten_thousand_rows_in_one_request(client, test_set):
    X, _ = test_set
    rows = np.resize(X, (10_000, 30))
    body = client.predict(rows)
    assert len(body["data"]["ndarray"]) == 10_000


def test_one_by_one_feedback_counts_every_row_once(client, test_set):
    X, y = test_set
    before = outcome_totals()
    for row, label in zip(X, y):
        last = client.feedback([row], [label])
    assert counted_since(before) == CURRENT
    # The last response describes the whole container: every worker, all feedback so far.
    reported = {m["key"]: m["value"] for m in last["meta"]["metrics"] if m.get("type") == "GAUGE"}
    expected = ratios(outcome_totals())
    assert reported == pytest.approx(expected, abs=1e-7)


def test_batch_feedback_counts_every_row(client, test_set):
    X, y = test_set
    before = outcome_totals()
    client.feedback(X, y)
    assert counted_since(before) == CURRENT


def _host_and_port(client):
    address = urlsplit(client.base_url)
    return address.hostname, address.port


@pytest.mark.skipif(not served_with("keepalive_worker"), reason="stock seldon-core: gunicorn's sync worker")
def test_connections_are_kept_alive(client, test_set):
    """One connection, many requests: gunicorn's sync worker would close it after each response."""
    X, _ = test_set
    host, port = _host_and_port(client)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    body = json.dumps({"data": {"ndarray": [list(X[0])]}})
    for i in range(5):
        conn.request("POST", "/api/v1.0/predictions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["data"]["ndarray"] == [0]
        if i == 0:
            sock = conn.sock
        assert conn.sock is sock and response.getheader("Connection") == "keep-alive"
    conn.close()


@pytest.mark.skipif(not served_with("keepalive_worker"), reason="stock seldon-core: gunicorn's sync worker")
def test_a_client_that_stops_sending_gets_408_and_holds_up_no_one(client, test_set):
    """A body that stops half way is answered 408 once its connection has been quiet for 5 s
    (keepalive_worker.STALLED_CLIENT_SECONDS), counting nothing; the others are served meanwhile
    by the other workers, and by this one once it has given up on the stalled client."""
    X, y = test_set
    host, port = _host_and_port(client)
    before = outcome_totals()
    whole = json.dumps({"request": {"data": {"ndarray": [list(X[0])]}}, "truth": {"data": {"ndarray": [int(y[0])]}}})
    stalled = socket.create_connection((host, port), timeout=30)
    stalled.sendall(f"POST /api/v1.0/feedback HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(whole)}\r\n\r\n{whole[:20]}".encode())
    started = time.monotonic()
    for _ in range(20):
        assert client.predict([X[0]])["data"]["ndarray"] == [0]
    answer = b""
    while chunk := stalled.recv(4096):
        answer += chunk
    waited = time.monotonic() - started
    stalled.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"the body stopped arriving" in answer
    assert 4 < waited < 20, waited
    assert outcome_totals() == before
    assert client.is_up()


def test_metrics_endpoint_exposes_the_contract():
    samples = parse_samples(requests.get(METRICS_URL, timeout=5).text)
    outcomes = {labels["outcome"] for name, labels, _ in samples if name == "feedback_outcomes_total"}
    assert outcomes == {"tp", "fp", "tn", "fn"}
    names = {name for name, _, _ in samples}
    assert {"accuracy", "precision", "recall", "f1_score"} <= names


def _send(base_url, case):
    if "body_bytes" in case:
        data = b'{"data": {"ndarray": [[' + b"1.0," * (case["body_bytes"] // 4) + b"1.0]]}}"
    elif "body_hex" in case:
        data = bytes.fromhex(case["body_hex"])
    else:
        data = case["body"].encode()
    return requests.post(base_url + case["path"], data=data, headers={"Content-Type": case["content_type"]},
                         timeout=30)


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_bad_request_is_refused_and_counts_nothing(client, case):
    before = outcome_totals()
    response = _send(client.base_url, case)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if "status" in case:
        assert response.status_code == case["status"]
    assert case["message_contains"] in response.json()["status"]["info"]
    assert outcome_totals() == before
    assert client.is_up()


def test_health_status_predicts(client):
    body = requests.get(client.base_url + "/health/status", timeout=5).json()
    assert body["jsonData"]["model_version"].startswith("binary-lr.joblib@")


def test_seldon_client_rest_and_grpc(client):
    """seldon-core's own SeldonClient (microservice endpoint), from the serving environment."""
    done = subprocess.run([str(REPO_ROOT / "venvs" / "serving" / "bin" / "python"),
                           str(Path(__file__).parent / "seldon_client_check.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"rest": [0], "grpc": [0]}


@pytest.mark.skipif(not served_with("grpc_status"), reason="stock seldon-core: a refused gRPC request ends UNKNOWN")
def test_grpc_refuses_bad_requests_with_invalid_argument_and_the_rest_message(client):
    """Over gRPC (from the serving environment), what REST answers 400 ends with INVALID_ARGUMENT and
    the same message; a good request still succeeds."""
    done = subprocess.run([str(REPO_ROOT / "venvs" / "serving" / "bin" / "python"),
                           str(Path(__file__).parent / "grpc_bad_request_check.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    answers = json.loads(done.stdout.splitlines()[-1])
    assert answers.pop("a good row") == ["OK", ""]
    assert {code for code, _ in answers.values()} == {"INVALID_ARGUMENT"}
    row = [0.5] * 29
    rest = requests.post(client.base_url + "/api/v1.0/predictions", timeout=10,
                         json={"data": {"tensor": {"shape": [1, 29], "values": row}}})
    assert rest.status_code == 400
    assert answers["29 features"][1] == rest.json()["status"]["info"] == "each row must have 30 features, got 29"
    assert answers["NaN"][1] == "features must be finite: row 0, column 0 is nan"
    assert answers["truth label 2"][1].startswith("truth labels must be 0 or 1")


@pytest.mark.skipif(not served_with("grpc_status"), reason="stock seldon-core: a refused gRPC request ends UNKNOWN")
def test_the_bad_request_corpus_over_grpc_is_refused_as_rest_refuses_it(client):
    """Every case of tests/bad_requests.json a protobuf message can carry: INVALID_ARGUMENT with what
    REST's message says; a message over gRPC's size limit: RESOURCE_EXHAUSTED."""
    done = subprocess.run([str(REPO_ROOT / "venvs" / "serving" / "bin" / "python"),
                           str(Path(__file__).parent / "grpc_bad_request_check.py"), "--corpus"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    answers = json.loads(done.stdout.splitlines()[-1])
    code, message, _ = answers.pop("over the size limit")
    assert code == "RESOURCE_EXHAUSTED" and "larger than max" in message
    assert len(answers) >= 30
    wrong = {name: (code, message) for name, (code, message, contains) in answers.items()
             if code != "INVALID_ARGUMENT" or contains.lower() not in message.lower()}
    # 1e999 arrives over gRPC as Infinity already (protobuf parses it on the client): named so.
    assert wrong.keys() <= {"overflowing exponent"}, wrong
    assert all(code == "INVALID_ARGUMENT" for code, _ in wrong.values())


def test_every_prediction_has_a_puid_and_its_feedback_counts_once(client, test_set):
    if not served_with("prediction_ids"):
        pytest.skip("SERVING_TUNING leaves out prediction_ids: stock seldon-core gives no puid")
    X, y = test_set
    answers = [client.predict([row]) for row in X[:20]]
    puids = [a["meta"]["puid"] for a in answers]
    assert len(set(puids)) == 20 and all(puids)
    given = client._post("/api/v1.0/predictions", {"data": {"ndarray": [list(X[0])]}, "meta": {"puid": "mine-1"}})
    assert given["meta"]["puid"] == "mine-1"  # a puid the client (or Seldon's executor) gave is kept
    before = outcome_totals()
    for _ in range(3):
        for row, label, answer in zip(X[:20], y[:20], answers):
            client.feedback([row], [label], response=answer)
    assert sum(counted_since(before).values()) == 20
    refused = requests.post(client.base_url + "/api/v1.0/feedback", timeout=10,
                            json={"request": {"data": {"ndarray": [list(X[0])]}}, "truth": {"data": {"ndarray": [int(1 - y[0])]}},
                                  "response": answers[0]})
    assert refused.status_code == 409 and "counted once per prediction" in refused.json()["status"]["info"]


def test_grpc_feedback_with_its_response_counts_once(client):
    if not served_with("prediction_ids"):
        pytest.skip("SERVING_TUNING leaves out prediction_ids: stock seldon-core gives no puid")
    before = outcome_totals()
    done = subprocess.run([str(REPO_ROOT / "venvs" / "serving" / "bin" / "python"),
                           str(Path(__file__).parent / "grpc_exactly_once_check.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["puid"]
    answers = result["answers"]
    assert [answers[k][0] for k in ("first", "again", "again through another")] == ["OK"] * 3
    assert answers["other label"][0] == "ALREADY_EXISTS"
    assert answers["no puid"] == ["INVALID_ARGUMENT", "response.meta.puid is missing: send back the response "
                                                      "the prediction was answered with"]
    assert sum(counted_since(before).values()) == 1


OVER_THE_LIMIT = b'{"data": {"ndarray": [' + b"[1.0]," * (40_000_000 // 6) + b"[1.0]]}}"  # 40 MB


def _post_with_urllib(url, body):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:  # urllib sends "Connection: close" and its whole body first
        return err.code, err.read()


def _post_with_requests(url, body):
    answer = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    return answer.status_code, answer.content


@pytest.mark.parametrize("post", [_post_with_urllib, _post_with_requests], ids=["urllib", "requests"])
def test_a_body_over_the_limit_gets_its_413_in_the_common_python_clients(client, post):
    if not served_with("keepalive_worker"):
        pytest.skip("SERVING_TUNING leaves out keepalive_worker: stock gunicorn closes with the body unread")
    status, body = post(client.base_url + "/api/v1.0/predictions", OVER_THE_LIMIT)
    assert status == 413
    assert "more than the limit of 33554432" in json.loads(body)["status"]["info"]
    assert client.predict([[0.5] * 30])  # the worker is free again


def test_a_huge_body_is_not_read_to_its_end(client):
    """A client announcing 1 GB is answered 413 at once, and the worker stops reading after a bounded
    amount: the connection ends long before the gigabyte."""
    host, port = _host_and_port(client)
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000000000\r\n\r\n")
    chunk, sent, started = b"0" * 1_000_000, 0, time.monotonic()
    try:
        while sent < 1_000_000_000 and time.monotonic() - started < 30:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # reset or broken pipe: the server closed the connection
        pass
    finally:
        sock.close()
    assert sent < 400_000_000, f"the server read {sent} bytes of a refused body"
    assert client.predict([[0.5] * 30])
