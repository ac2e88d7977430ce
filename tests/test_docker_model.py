"""The serving class on its own, in-process: no server, no Docker."""
import json
import os
import shutil

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from DockerModel import DockerModel
from serving.artifacts import ModelMismatch
from serving.validation import BadInput, check_features, check_truth
from serving.feedback_log import FeedbackLog, ratios
from kit import MODELS_DIR
from tests import CURRENT



def counters(metrics):
    return {m["tags"]["outcome"]: m["value"] for m in metrics if m["type"] == "COUNTER"}


def gauges(metrics):
    return {m["key"]: m["value"] for m in metrics if m["type"] == "GAUGE"}


@pytest.fixture
def model():
    return DockerModel(feedback_db=":memory:")


def test_predicts_like_the_trained_model(model, test_set):
    X, _ = test_set
    import joblib

    expected = joblib.load(MODELS_DIR / "binary-lr.joblib").predict(X)
    assert np.array_equal(model.predict(X), expected)
    assert model.tags()["shape_input_data"] == "(513, 30)"
    model.predict(X[:1])
    assert model.tags()["shape_input_data"] == "(1, 30)"


def test_batch_feedback_scores_every_row(model, test_set):
    X, y = test_set
    model.send_feedback(X, None, 0, y)
    s = model.scores
    assert {"tp": s.TP, "fp": s.FP, "tn": s.TN, "fn": s.FN} == CURRENT
    assert gauges(model.metrics())["accuracy"] == pytest.approx(475 / 513)


def test_one_row_feedback_matches_batch(model, test_set):
    X, y = test_set
    for row, label in zip(X, y):
        model.send_feedback([row], None, 0, [label])
    assert model.feedback.totals() == CURRENT


def test_truth_as_column_vector_is_accepted(model, test_set):
    X, y = test_set
    model.send_feedback(X[:5], None, 0, np.asarray(y[:5]).reshape(-1, 1))
    assert sum(model.feedback.totals().values()) == 5


def test_counter_increments_are_handed_out_once(model, test_set):
    X, y = test_set
    model.send_feedback(X, None, 0, y)
    assert counters(model.metrics()) == CURRENT
    assert counters(model.metrics()) == dict.fromkeys(CURRENT, 0)


def test_workers_sharing_a_log_export_each_outcome_once(tmp_path, test_set):
    X, y = test_set
    log = FeedbackLog(str(tmp_path / "fb.sqlite"))
    half = len(X) // 2
    log.append(X[:half], [1] * half, y[:half], "v")
    first = log.claim_unexported(exporter=101)
    log.append(X[half:], [1] * (len(X) - half), y[half:], "v")
    second = log.claim_unexported(exporter=102)
    assert {k: first.get(k, 0) + second.get(k, 0) for k in set(first) | set(second)} == log.totals_by_model()
    # A worker that exits cleanly loses its series: its share goes back to be exported again.
    log.release(101)
    assert log.claim_unexported(exporter=103) == first


def test_metrics_follow_feedback_logged_by_another_process(tmp_path, test_set):
    # metrics() is answered from a cache while the log is unchanged: a commit from another
    # connection (another worker) must still show in the next answer, and be claimed once.
    X, y = test_set
    db = str(tmp_path / "fb.sqlite")
    idle, busy = DockerModel(feedback_db=db), DockerModel(feedback_db=db)
    assert gauges(idle.metrics())["accuracy"] == 0 and counters(idle.metrics()) == dict.fromkeys(CURRENT, 0)
    busy.feedback.append(X, idle.model.predict(X), y, "v")  # logged, not yet claimed by anyone
    after = idle.metrics()
    assert gauges(after)["accuracy"] == pytest.approx(475 / 513) and counters(after) == CURRENT
    assert counters(busy.metrics()) == dict.fromkeys(CURRENT, 0)
    assert counters(idle.metrics()) == dict.fromkeys(CURRENT, 0)
    busy.send_feedback(X[:1], None, 0, y[:1])
    assert sum(counters(idle.metrics()).values()) + sum(counters(busy.metrics()).values()) == 1


def test_restart_restores_totals_and_exports_them_again(tmp_path, test_set):
    X, y = test_set
    db = str(tmp_path / "fb.sqlite")
    before = DockerModel(feedback_db=db)
    before.send_feedback(X, None, 0, y)
    before.metrics()
    after = DockerModel(feedback_db=db)  # a new server process on the same volume
    assert after.feedback.totals() == CURRENT
    assert counters(after.metrics()) == CURRENT
    assert len(after.feedback.rows()) == 513


def test_feedback_rows_are_a_retraining_data_set(model, test_set):
    X, y = test_set
    model.send_feedback(X[:3], None, 0, y[:3])
    rows = model.feedback.rows()
    assert [r["truth"] for r in rows] == list(y[:3])
    assert json.loads(rows[0]["features"]) == X[0].tolist()
    assert rows[0]["model_version"].startswith("binary-lr.joblib@")


def test_injected_model_needs_no_file():
    clf = LogisticRegression().fit(np.r_[np.zeros((5, 30)), np.ones((5, 30))], [0] * 5 + [1] * 5)
    m = DockerModel(model=clf, feedback_db=":memory:")
    assert m.predict(np.ones((2, 30))).tolist() == [1, 1]
    assert m.model_version == "injected:LogisticRegression"


@pytest.mark.parametrize("rows, message", [
    ([[1.0] * 29], "30 features, got 29"),
    ([[1.0] * 30, [1.0] * 29], "different lengths"),
    ([["a"] + [1.0] * 29], "row 0, column 0 is str"),
    ([[None] + [1.0] * 29], "row 0, column 0 is NoneType"),
    ([[float("nan")] + [1.0] * 29], "finite"),
    ([[1.0] * 29 + [float("inf")]], "row 0, column 29"),
    ([[1e300] + [1.0] * 29], "outside"),
    ([[10 ** 400] + [1] * 29], "must be numbers"),
    ([], "no rows"),
    ([1.0] * 30, "flat list"),
    ([[[1.0] * 30]], "2-d"),
])
def test_bad_features_are_refused_with_the_reason(rows, message):
    with pytest.raises(BadInput, match=message) as err:
        check_features(rows)
    assert err.value.status_code == 400


@pytest.mark.parametrize("truth, message", [
    (None, "needs 'truth'"),
    ([2], "0 or 1"),
    (["1"], "0 or 1"),
    ([True], "0 or 1"),
    ([0.5], "0 or 1"),
    ([1, 0], "2 label"),
    ([[1, 0]], "one per row"),
])
def test_bad_truth_is_refused_and_counts_nothing(model, test_set, truth, message):
    X, _ = test_set
    with pytest.raises(BadInput, match=message):
        model.send_feedback(X[:1], None, 0, truth)
    assert sum(model.feedback.totals().values()) == 0


def test_integers_and_float_labels_are_valid():
    assert check_features([[1] * 30]).dtype == np.float64
    assert check_truth([1.0, 0], 2).tolist() == [1, 0]


def test_changed_artifact_stops_the_server(tmp_path):
    shutil.copytree(MODELS_DIR, tmp_path / "models")
    artifact = tmp_path / "models" / "binary-lr.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(ModelMismatch, match="sha256"):
        DockerModel(str(artifact), feedback_db=":memory:")


def test_other_scikit_learn_version_stops_the_server(tmp_path):
    shutil.copytree(MODELS_DIR, tmp_path / "models")
    meta_path = tmp_path / "models" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["versions"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelMismatch, match="scikit-learn 0.24.2"):
        DockerModel(str(tmp_path / "models" / "binary-lr.joblib"), feedback_db=":memory:")


def test_ratios_are_zero_where_undefined():
    assert ratios(dict.fromkeys(CURRENT, 0)) == {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1_score": 0.0}
    assert ratios(CURRENT)["precision"] == pytest.approx(303 / 318)


def test_metadata_matches_the_committed_artifacts():
    meta = json.loads((MODELS_DIR / "metadata.json").read_text())
    lr = meta["models"]["binary-lr.joblib"]["test_metrics"]
    assert {k: lr[k] for k in CURRENT} == CURRENT
    assert meta["split"]["test_rows"] == 513 and meta["split"]["train_rows"] == 56


def test_model_path_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MODEL_PATH", os.fspath(MODELS_DIR / "binary-percept.joblib"))
    assert DockerModel(feedback_db=":memory:").model_version.startswith("binary-percept.joblib@")


def _answered(model, X, puid, version=None, predictions=None):
    """The response a prediction of these rows would have had, as a feedback call sends it back."""
    predictions = model.predict(X).tolist() if predictions is None else predictions
    return {"data": {"names": [], "ndarray": predictions},
            "meta": {"puid": puid, "tags": {"model_version": version or model.model_version}}}


def test_feedback_with_its_response_counts_once_however_often_sent(model, test_set):
    X, y = test_set
    response = _answered(model, X[:50], "p-1")
    for _ in range(3):
        assert model.send_feedback(X[:50], None, 0, y[:50], response=response) == []
    assert sum(model.feedback.totals().values()) == 50
    model.send_feedback(X[:50], None, 0, y[:50])  # without a response: scored as sent, every time
    assert sum(model.feedback.totals().values()) == 100


def test_feedback_with_other_labels_for_the_same_prediction_is_refused_409(model, test_set):
    X, y = test_set
    response = _answered(model, X[:1], "p-2")
    model.send_feedback(X[:1], None, 0, y[:1], response=response)
    with pytest.raises(BadInput) as refused:
        model.send_feedback(X[:1], None, 0, [1 - y[0]], response=response)
    assert refused.value.status_code == 409 and "p-2" in str(refused.value)
    assert sum(model.feedback.totals().values()) == 1


def test_feedback_is_scored_by_the_prediction_and_model_its_response_names(model, test_set):
    X, y = test_set
    perceptron = next(v for v in model.served_versions if v.startswith("binary-percept"))
    opposite = [1 - int(p) for p in model.predict(X[:20])]
    model.send_feedback(X[:20], None, 0, y[:20], response=_answered(model, X[:20], "p-3", perceptron, opposite))
    rows = model.feedback.rows()
    assert [r["prediction"] for r in rows] == opposite
    assert {r["model_version"] for r in rows} == {perceptron}


@pytest.mark.parametrize("damage, says", [
    (lambda r: r["meta"].pop("puid"), "response.meta.puid is missing"),
    (lambda r: r["data"]["ndarray"].pop(), "the response holds 1 prediction(s) for 2 row(s)"),
    (lambda r: r["meta"]["tags"].update(model_version="binary-lr.joblib@000000000000"), "not a model this server serves"),
    (lambda r: r["data"].update(ndarray=[0, 7]), "must be 0 or 1"),
])
def test_a_response_that_cannot_be_right_is_refused_and_counts_nothing(model, test_set, damage, says):
    X, y = test_set
    response = _answered(model, X[:2], "p-4")
    damage(response)
    with pytest.raises(BadInput) as refused:
        model.send_feedback(X[:2], None, 0, y[:2], response=response)
    assert refused.value.status_code == 400 and says in str(refused.value)
    assert sum(model.feedback.totals().values()) == 0


def test_feedback_for_another_replicas_model_is_handed_on_unchecked_here(model, test_set, monkeypatch):
    """A canary's model version is one the other replicas' metadata does not list: the replica that
    made the prediction checks it, not the one the balancer gave the feedback to."""
    import DockerModel as module
    from serving import prediction_ids

    X, y = test_set
    handed_on = []
    monkeypatch.setattr(prediction_ids, "PEERS", ["r1", "r2"])
    monkeypatch.setattr(module, "REPLICA", "r1")
    monkeypatch.setattr(module, "forward_feedback", lambda owner, *args: handed_on.append(owner))
    canary = "binary-lr-retrained-0123abcd.joblib@0123abcd4567"
    model.send_feedback(X[:3], None, 0, y[:3], response=_answered(model, X[:3], "p-6.r2", canary))
    assert handed_on == ["r2"] and sum(model.feedback.totals().values()) == 0
    with pytest.raises(BadInput, match="not a model this server serves"):  # its own puid: checked here
        model.send_feedback(X[:3], None, 0, y[:3], response=_answered(model, X[:3], "p-7.r1", canary))


def test_a_prediction_fed_back_is_remembered_across_restarts(tmp_path, test_set):
    X, y = test_set
    first = DockerModel(feedback_db=str(tmp_path / "feedback.sqlite"))
    response = _answered(first, X[:5], "p-5")
    first.send_feedback(X[:5], None, 0, y[:5], response=response)
    again = DockerModel(feedback_db=str(tmp_path / "feedback.sqlite"))
    again.send_feedback(X[:5], None, 0, y[:5], response=response)
    assert sum(again.feedback.totals().values()) == 5


def test_counters_are_kept_per_model_version(model, test_set):
    X, y = test_set
    perceptron = next(v for v in model.served_versions if v.startswith("binary-percept"))
    model.send_feedback(X[:100], None, 0, y[:100])
    model.send_feedback(X[100:103], None, 0, y[100:103], response=_answered(model, X[100:103], "p-6", perceptron, [1, 1, 1]))
    by_model = {}
    for m in model.metrics():
        if m["type"] == "COUNTER":
            by_model[m["tags"]["model"]] = by_model.get(m["tags"]["model"], 0) + m["value"]
    assert by_model == {model.model_version: 100, perceptron: 3}
    assert sum(model.feedback.totals().values()) == 103  # the ratios describe every row


def test_a_log_of_the_earlier_schema_is_counted_again_per_model(tmp_path, test_set):
    import sqlite3

    X, y = test_set
    path = str(tmp_path / "old.sqlite")
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE feedback (id INTEGER PRIMARY KEY, received_at REAL NOT NULL, model_version TEXT NOT NULL,
            features TEXT NOT NULL, prediction INTEGER NOT NULL, truth INTEGER NOT NULL, outcome TEXT NOT NULL);
        CREATE TABLE totals (outcome TEXT PRIMARY KEY, n INTEGER NOT NULL);
        CREATE TABLE exported (exporter INTEGER NOT NULL, outcome TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (exporter, outcome));
        INSERT INTO feedback VALUES (1, 0, 'a', '[]', 1, 1, 'tp'), (2, 0, 'a', '[]', 1, 0, 'fp'), (3, 0, 'b', '[]', 0, 0, 'tn');
        INSERT INTO totals VALUES ('tp', 1), ('fp', 1), ('tn', 1), ('fn', 0);""")
    old.close()
    log = FeedbackLog(path)
    assert log.totals_by_model() == {("a", "tp"): 1, ("a", "fp"): 1, ("b", "tn"): 1}
    assert log.claim_unexported(exporter=1) == log.totals_by_model()


def test_a_full_log_refuses_feedback_with_507_loses_nothing_and_recovers(tmp_path, test_set, monkeypatch):
    from serving.validation import Unavailable

    X, y = test_set
    model = DockerModel(feedback_db=str(tmp_path / "feedback.sqlite"))
    free = [1000]  # bytes left on the log's disk, as the server reads them
    monkeypatch.setattr(model.feedback, "free_bytes", lambda: free[0])

    def limit_pages(extra):
        with model.feedback._locked() as conn:  # SQLite refuses to grow past it: SQLITE_FULL, as a full disk
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + extra}")

    limit_pages(3)
    acknowledged = 0
    for i in range(len(X)):
        try:
            model.send_feedback(X[i:i + 1], None, 0, y[i:i + 1])
        except Unavailable as refused:
            assert refused.status_code == 507 and "full" in str(refused) and "send it again" in str(refused)
            break
        acknowledged += 1
    else:
        pytest.fail("the log never filled up")
    assert 0 < acknowledged == sum(model.feedback.totals().values()) == len(model.feedback.rows())
    assert len(model.predict(X[:5])) == 5 and model.metrics()  # predictions and their metrics go on
    assert model.health_status()["feedback_log"].startswith("unwritable: the disk holding the feedback log is full")
    assert model.figures.families()[0].samples[0].value == 0
    free[0] = 10 << 20  # space is back: said at once, before any feedback call
    assert model.health_status()["feedback_log"] == "writable"
    limit_pages(1000)
    model.send_feedback(X[:1], None, 0, y[:1])
    assert sum(model.feedback.totals().values()) == acknowledged + 1
    assert model.health_status()["feedback_log"] == "writable"
    assert model.figures.families()[0].samples[0].value == 1
