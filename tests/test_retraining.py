"""Retraining from the feedback log (kit/retraining.py): refusals, the normal path on the 513 test
rows, the deliberately bad retrain, reading a real log; with Docker, the new image and a container's log."""
import json
import os
import runpy
import subprocess

import numpy as np
import pytest
import sklearn

from kit import MODELS_DIR, retraining
from kit.retraining import (RetrainingRefused, build_image, check_candidate, logged_feedback, retrain,
                            write_artifact)
from serving.artifacts import load_verified, served_versions, sha256_of, version_of
from serving.feedback_log import FeedbackLog
from tests.containers import IMAGE, docker, engine_available

COMMITTED = json.loads((MODELS_DIR / "metadata.json").read_text())
COMMITTED_LR = version_of("binary-lr.joblib", COMMITTED["models"]["binary-lr.joblib"]["sha256"])


@pytest.fixture(scope="module")
def retrained(test_set):
    X, y = test_set
    return retrain(X, y, sources={"data/test_set.csv": len(X)})


def test_too_few_rows_are_refused(test_set):
    X, y = test_set
    with pytest.raises(RetrainingRefused, match="too few rows to retrain on: 60 distinct rows logged, at least 100"):
        retrain(X[:60], y[:60])


def test_rows_fed_back_twice_count_once_towards_the_minimum(test_set):
    X, y = test_set
    with pytest.raises(RetrainingRefused, match=r"60 distinct rows logged \(120 with the rows fed back more than once\)"):
        retrain(np.vstack([X[:60], X[:60]]), np.concatenate([y[:60], y[:60]]))


def test_labels_of_one_class_are_refused(test_set):
    X, y = test_set
    with pytest.raises(RetrainingRefused, match=r"one class only \(all 1\)"):
        retrain(X[y == 1], y[y == 1])


def test_a_class_with_too_few_rows_is_refused(test_set):
    X, y = test_set
    keep = np.concatenate([np.flatnonzero(y == 1), np.flatnonzero(y == 0)[:8]])
    with pytest.raises(RetrainingRefused, match=f"only 8 distinct rows of class 0 among {len(keep)}: at least 15 are needed"):
        retrain(X[keep], y[keep])


def test_copies_of_one_row_count_once_per_class(test_set):
    X, y = test_set
    ones, zero = np.flatnonzero(y == 1), np.flatnonzero(y == 0)[0]
    keep = np.concatenate([ones, np.repeat(zero, 20)])  # one row of class 0, fed back 20 times
    with pytest.raises(RetrainingRefused, match="only 1 distinct rows of class 0"):
        retrain(X[keep], y[keep])


def test_labels_other_than_0_and_1_are_refused(test_set):
    X, y = test_set
    with pytest.raises(RetrainingRefused, match=r"labels \[0, 1, 2\]: the model is binary"):
        retrain(X, np.where(np.arange(len(y)) < 20, 2, y))


def test_wrong_feature_count_is_refused(test_set):
    X, y = test_set
    with pytest.raises(RetrainingRefused, match=r"shape \(513, 29\): the model takes 30 features"):
        retrain(X[:, :29], y)


def test_retrain_on_the_test_rows_holds_out_rows_it_never_saw(retrained, test_set):
    X, y = test_set
    r = retrained
    assert (len(r.X_train), len(r.X_holdout), r.rows) == (359, 154, 513)
    assert r.base_version == COMMITTED_LR
    trained = {row.tobytes() for row in r.X_train}
    assert not any(row.tobytes() in trained for row in r.X_holdout)
    # stratified: both parts keep the classes' share of the 513 rows (326 of class 1)
    assert abs(r.y_holdout.mean() - y.mean()) < 0.01
    # the figures are of those rows, for both models
    import joblib
    current = joblib.load(MODELS_DIR / "binary-lr.joblib")
    assert r.base_metrics["accuracy"] == pytest.approx((current.predict(r.X_holdout) == r.y_holdout).mean())
    assert r.metrics["accuracy"] == pytest.approx((r.model.predict(r.X_holdout) == r.y_holdout).mean())
    assert check_candidate(r) == []


def test_copies_of_a_row_stay_on_one_side_of_the_split(test_set):
    X, y = test_set
    r = retrain(np.vstack([X, X[:200]]), np.concatenate([y, y[:200]]))
    assert (r.rows, r.distinct_rows) == (713, 513)
    trained = {row.tobytes() for row in r.X_train}
    assert not any(row.tobytes() in trained for row in r.X_holdout)


def test_written_artifact_loads_verified_with_its_metadata(retrained, tmp_path):
    out = tmp_path / "models"
    artifact = write_artifact(retrained, out)
    assert artifact.path.name == f"binary-lr-retrained-{artifact.sha256[:8]}.joblib"
    model, version = load_verified(str(artifact.path))
    assert version == artifact.version
    assert np.array_equal(model.predict(retrained.X_holdout), retrained.model.predict(retrained.X_holdout))

    metadata = json.loads((out / "metadata.json").read_text())
    entry = metadata["models"][artifact.path.name]
    assert entry["sha256"] == sha256_of(artifact.path)
    assert entry["versions"]["scikit-learn"] == sklearn.__version__ == metadata["versions"]["scikit-learn"]
    assert entry["versions"]["numpy"] == np.__version__
    assert entry["test_metrics"] == retrained.metrics
    assert entry["params"] == COMMITTED["models"]["binary-lr.joblib"]["params"]
    trained_on = entry["trained_on"]
    assert trained_on["sources"] == {"data/test_set.csv": 513}
    assert (trained_on["rows"], trained_on["holdout_rows"], trained_on["seed"]) == (359, 154, 0)
    reference = out / entry["reference"]["file"]
    assert entry["reference"] == {"file": f"{artifact.path.stem}.reference.npy", "sha256": sha256_of(reference),
                                  "rows": 359, "features": COMMITTED["models"]["binary-lr.joblib"]["reference"]["features"]}
    rows = np.load(reference)
    assert rows.dtype == np.float64 and np.array_equal(rows, np.unique(retrained.X_train, axis=0))
    assert trained_on["rows_sha256"] == retraining._rows_sha256(retrained.X_train, retrained.y_train)
    # the drift monitor of the new model reads it, names and all
    from serving.drift import reference_for
    assert reference_for(str(artifact.path)).feature_names[0] == "mean radius"

    # the committed models come along, so feedback on their predictions is still accepted
    for name, committed in COMMITTED["models"].items():
        assert metadata["models"][name] == committed and sha256_of(out / name) == committed["sha256"]
    assert served_versions(str(artifact.path)) >= {COMMITTED_LR, artifact.version}
    # user 8888 of the image reads them as "other"
    assert all(f.stat().st_mode & 0o777 == 0o644 for f in out.iterdir())


def test_an_earlier_retrain_in_out_dir_stays_listed(retrained, test_set, tmp_path):
    X, y = test_set
    first = write_artifact(retrained, tmp_path / "models")
    second = write_artifact(retrain(X, y, seed=1), tmp_path / "models")
    assert first.path != second.path
    assert served_versions(str(second.path)) >= {first.version, second.version, COMMITTED_LR}


def test_shuffled_labels_fail_the_checks_and_are_not_written(test_set, tmp_path):
    X, y = test_set
    bad = retrain(X, y, shuffle_labels=True)
    assert bad.metrics["accuracy"] < 0.8 < bad.base_metrics["accuracy"]
    failed = check_candidate(bad)
    assert len(failed) == 2
    assert "below the current model's" in failed[0] and "below the floor of 0.9" in failed[1]
    assert f"{bad.metrics['accuracy']:.4f}" in failed[1]
    with pytest.raises(RetrainingRefused, match="failed its checks and is not written"):
        write_artifact(bad, tmp_path / "models")
    assert not (tmp_path / "models").exists()


def _log_with_rows(path, X, y, version):
    import joblib
    predictions = joblib.load(MODELS_DIR / "binary-lr.joblib").predict(X)
    FeedbackLog(str(path)).append(X, predictions, y, version)


def test_feedback_of_sqlite_logs_comes_back_as_logged(test_set, tmp_path):
    X, y = test_set
    one, two = tmp_path / "r1" / "feedback.sqlite", tmp_path / "r2" / "feedback.sqlite"
    _log_with_rows(one, X[:300], y[:300], COMMITTED_LR)
    _log_with_rows(one, X[:10], y[:10], COMMITTED_LR)  # fed back again, without its puid: kept
    _log_with_rows(two, X[300:], y[300:], "binary-percept.joblib@f63c1a1eaafb")
    fb = logged_feedback([str(one), str(two)])
    assert np.array_equal(fb.X, np.vstack([X[:300], X[:10], X[300:]]))
    assert np.array_equal(fb.y, np.concatenate([y[:300], y[:10], y[300:]]))
    assert fb.counts() == {str(one): {COMMITTED_LR: 310}, str(two): {"binary-percept.joblib@f63c1a1eaafb": 213}}
    assert list(fb.source[309:311]) == [str(one), str(two)]


def test_since_keeps_only_the_recent_rows(test_set, tmp_path):
    import time

    X, y = test_set
    path = tmp_path / "feedback.sqlite"
    _log_with_rows(path, X[:100], y[:100], COMMITTED_LR)
    time.sleep(0.01)
    since = time.time()
    _log_with_rows(path, X[100:130], y[100:130], COMMITTED_LR)
    recent = logged_feedback([str(path)], since=since)
    assert np.array_equal(recent.X, X[100:130]) and np.array_equal(recent.y, y[100:130])


# run_module warns that the module is imported already (by this file): harmless for its __main__ block.
@pytest.mark.filterwarnings("ignore:'serving.feedback_log' found in sys.modules")
def test_the_container_format_is_read_like_the_file(test_set, tmp_path, monkeypatch, capsys):
    """What `docker exec NAME python3 -m serving.feedback_log` prints, printed by that module here."""
    X, y = test_set
    path = tmp_path / "feedback.sqlite"
    _log_with_rows(path, X[:50], y[:50], COMMITTED_LR)
    monkeypatch.setenv("FEEDBACK_DB", str(path))
    runpy.run_module("serving.feedback_log", run_name="__main__")
    printed = capsys.readouterr().out
    monkeypatch.setattr(retraining, "_exec_in", lambda container: printed)
    fb = logged_feedback(["docker-model-r2"])
    assert np.array_equal(fb.X, X[:50]) and np.array_equal(fb.y, y[:50])
    assert fb.counts() == {"docker-model-r2": {COMMITTED_LR: 50}}


def test_a_missing_log_file_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError, match="no feedback log"):
        logged_feedback([str(tmp_path / "feedback.sqlite")])
    assert not (tmp_path / "feedback.sqlite").exists()


def test_no_running_container_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(retraining, "running_containers", lambda: [])
    monkeypatch.setattr(retraining, "LOCAL_LOG", tmp_path / "feedback.sqlite")
    with pytest.raises(RetrainingRefused, match="none of the containers docker-model, docker-model-r1.* runs"):
        logged_feedback()


def test_main_refuses_a_bad_retrain_with_a_non_zero_exit(test_set, tmp_path, capsys):
    X, y = test_set
    _log_with_rows(tmp_path / "feedback.sqlite", X, y, COMMITTED_LR)
    out = tmp_path / "out" / "models"
    code = retraining.main(["--from", str(tmp_path / "feedback.sqlite"), "--shuffle-labels", "--out-dir", str(out)])
    printed = capsys.readouterr().out
    assert code == 1 and "check failed" in printed and "no image built" in printed
    assert not out.exists()


needs_docker = pytest.mark.skipif(not engine_available(), reason="no Docker engine answers (docker info)")


def _image_or_skip():
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"no image {IMAGE} to build on: make image")


@needs_docker
def test_new_image_serves_the_new_artifact_as_user_8888(retrained, tmp_path):
    _image_or_skip()
    artifact = write_artifact(retrained, tmp_path / "models")
    tag = f"docker-model-test-retrained:{os.getpid()}-{artifact.sha256[:8]}"
    try:
        image = build_image(tmp_path / "models", tag=tag, base_image=IMAGE)
        assert (image.tag, image.model_version) == (tag, artifact.version)
        config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", tag))
        assert config["User"] == "8888:8888"
        assert config["Labels"]["org.opencontainers.image.version"] == tag.split(":")[1]
        assert f"MODEL_PATH=/app/models/{artifact.path.name}" in config["Env"]
        check = ("import os; from serving.artifacts import load_verified, served_versions; "
                 "m, v = load_verified(os.environ['MODEL_PATH']); "
                 "print(os.getuid(), v, len(served_versions(os.environ['MODEL_PATH'])))")
        found = docker("run", "--rm", "--network", "none", "--entrypoint", "python3", tag, "-c", check)
        assert found.split() == ["8888", artifact.version, str(len(COMMITTED["models"]) + 1)]
    finally:
        docker("image", "rm", "-f", tag, check=False)


@needs_docker
def test_feedback_of_a_running_container_is_read_with_docker_exec(test_set):
    _image_or_skip()
    X, y = test_set
    name = f"docker-model-retrain-test-{os.getpid()}"
    # The image's own Python writes its log on its volume, as the server would; no server, no ports.
    docker("run", "-d", "--rm", "--network", "none", "--name", name, "--entrypoint", "python3", IMAGE,
           "-c", "import time; time.sleep(120)")
    try:
        write = ("import json, os, sys; from serving.feedback_log import FeedbackLog; rows = json.load(sys.stdin); "
                 "FeedbackLog(os.environ['FEEDBACK_DB']).append(rows['X'], rows['y'], rows['y'], 'v@1')")
        subprocess.run(["docker", "exec", "-i", name, "python3", "-c", write], check=True,
                       input=json.dumps({"X": X[:40].tolist(), "y": y[:40].tolist()}), text=True)
        fb = logged_feedback([name])
        assert np.array_equal(fb.X, X[:40]) and np.array_equal(fb.y, y[:40])
        assert fb.counts() == {name: {"v@1": 40}}
    finally:
        docker("rm", "-f", "-v", name, check=False)
