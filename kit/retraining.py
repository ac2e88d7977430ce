"""Retraining from the feedback log: the rows and labels the served models logged, a fresh fit of
the current model's estimator, judged against the current model on rows the new one never saw, a
new artifact with its metadata, and a new version of the serving image that serves it.

    python -m kit.retraining [--from SOURCE ...] [--min-rows N] [--shuffle-labels] [--no-image]
    make retrain RETRAIN_ARGS="--from docker-model-r1 --no-image"

Exit codes: 0 done, 1 the candidate failed its checks, 2 refused (too few rows, one class, no
source), 3 the artifact is written but no image could be built.

A candidate that fails its checks is not written at all (no artifact, no metadata entry, no
image): only what passed can be listed in a metadata.json, so only what passed can be served.
"""
import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import joblib
import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from kit import MODELS_DIR, REPO_ROOT
from kit.training import blas_kernels, evaluate
from serving.artifacts import load_verified, sha256_of, version_of
from serving.validation import N_FEATURES

# The served model's containers: make serve's, and make scale's replicas.
CONTAINERS = ["docker-model", "docker-model-r1", "docker-model-r2", "docker-model-r3"]
# Without Docker, make serve runs the same class from venvs/serving, logging here.
LOCAL_LOG = REPO_ROOT / "build" / "feedback.sqlite"
OUT_DIR = REPO_ROOT / "build" / "retrained" / "models"
DOCKERFILE = REPO_ROOT / "image" / "retrained.Dockerfile"
VERSION = (REPO_ROOT / "VERSION").read_text().strip()
SERVING_IMAGE = f"docker-model:{VERSION}"
IMAGE_USER = "8888:8888"

# 100 distinct rows: 70 to train on (the committed model had 56) and 30 to judge by, where one row
# is already 3.3 points of accuracy. Fewer, and both figures are decided by a handful of rows.
MIN_ROWS = 100
# Each class needs this many rows in the training part: with fewer, the fit barely sees the class
# and the holdout holds only three or four of it, too few to tell whether it is recognised.
MIN_CLASS_ROWS = 10
# The new model may lose at most 2 points of holdout accuracy to the current one: 3 rows of the
# 154 a holdout of the 513 test rows has, so one or two borderline rows do not block a retrain.
MAX_ACCURACY_DROP = 0.02
# The committed model scores 0.926 on the 513 test rows; answering the majority class always
# scores about 0.63. A floor of 0.90 stops a degenerate fit even when the current model is bad too.
MIN_ACCURACY = 0.90


class RetrainingRefused(ValueError):
    """The data cannot give a model worth checking (too few rows, one class, wrong shape), or the
    candidate failed its checks; the message says what to do."""


class Feedback(NamedTuple):
    """The logged rows, as logged (a row fed back twice without its puid is there twice)."""
    X: np.ndarray              # (n, 30) float64
    y: np.ndarray              # (n,) int, the true labels fed back
    source: np.ndarray         # the container or file each row came from
    model_version: np.ndarray  # the version of the model whose prediction the row fed back

    def counts(self):
        """{source: {model version: rows}}, for the metadata and for people."""
        counts = {}
        for s, v in zip(self.source, self.model_version):
            counts.setdefault(str(s), {}).setdefault(str(v), 0)
            counts[str(s)][str(v)] += 1
        return counts


def running_containers():
    """The served model's containers that run now, in the order of CONTAINERS."""
    if shutil.which("docker") is None:
        return []
    done = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True)
    names = set(done.stdout.split()) if done.returncode == 0 else set()
    return [c for c in CONTAINERS if c in names]


def default_sources():
    containers = running_containers()
    if containers:
        return containers
    if LOCAL_LOG.exists():
        return [str(LOCAL_LOG)]
    raise RetrainingRefused(
        f"no feedback log to read: none of the containers {', '.join(CONTAINERS)} runs (make serve, "
        f"make scale: their logs are on their volumes, kept while they are stopped) and there is no "
        f"{_shown(LOCAL_LOG)}; start them again, or name a source: --from CONTAINER "
        "or --from path/to/feedback.sqlite")


def _shown(path):
    path = Path(path).resolve()
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


def _is_file(source):
    return str(source).endswith((".sqlite", ".db")) or os.sep in str(source) or Path(source).is_file()


def _exec_in(container):
    """The feedback log of a running container, one JSON row a line (serving/feedback_log.py)."""
    done = subprocess.run(["docker", "exec", container, "python3", "-m", "serving.feedback_log"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cannot read the feedback log of {container} (docker exec): "
                           f"{done.stderr.strip() or 'exit code ' + str(done.returncode)}")
    return done.stdout


def _rows_of(source):
    if _is_file(source):
        from serving.feedback_log import FeedbackLog

        if not Path(source).is_file():  # FeedbackLog would create an empty log there
            raise FileNotFoundError(f"no feedback log {source}")
        return FeedbackLog(str(source)).rows()
    return [json.loads(line) for line in _exec_in(source).splitlines() if line.strip()]


def logged_feedback(sources=None, since=None):
    """The feedback rows and labels of containers (by name, read with docker exec) and SQLite files
    (paths); by default of every running container of make serve and make scale. since: only the
    rows logged at or after that Unix time (the recent traffic, not last month's)."""
    sources = list(sources) if sources else default_sources()
    features, labels, origin, versions = [], [], [], []
    for source in sources:
        for row in _rows_of(source):
            if since is not None and row["received_at"] < since:
                continue
            # The log stores the features as JSON text; docker exec hands that text on as it is.
            x = json.loads(row["features"]) if isinstance(row["features"], str) else row["features"]
            if len(x) != N_FEATURES:
                raise RetrainingRefused(f"row {row['id']} of {source} has {len(x)} features, not {N_FEATURES}")
            features.append(x)
            labels.append(int(row["truth"]))
            origin.append(str(source))
            versions.append(row["model_version"])
    return Feedback(np.asarray(features, dtype=np.float64).reshape(-1, N_FEATURES),
                    np.asarray(labels, dtype=int), np.asarray(origin, dtype=str), np.asarray(versions, dtype=str))


@dataclasses.dataclass
class Retrained:
    """A candidate: the new model, and both models' figures on the same holdout rows."""
    model: object
    base: Path              # the current model's artifact
    base_version: str
    metrics: dict           # the new model on the holdout (kit.training.evaluate)
    base_metrics: dict      # the current model on the same rows
    X_train: np.ndarray
    y_train: np.ndarray     # permuted if shuffle_labels
    X_holdout: np.ndarray
    y_holdout: np.ndarray
    rows: int               # rows given, as logged
    distinct_rows: int
    holdout: float
    seed: int
    shuffled_labels: bool
    sources: dict


def _refuse_unless_trainable(X, y, holdout, min_rows):
    if X.ndim != 2 or X.shape[1] != N_FEATURES:
        raise RetrainingRefused(f"the rows have shape {X.shape}: the model takes {N_FEATURES} features a row")
    if len(y) != len(X):
        raise RetrainingRefused(f"{len(X)} rows but {len(y)} labels")
    if not 0 < holdout < 1:
        raise RetrainingRefused(f"holdout={holdout}: a fraction between 0 and 1 (0.3 keeps 30 % of the rows to judge by)")
    if not np.isfinite(X).all():
        raise RetrainingRefused("some features are NaN or infinite")
    _, first = np.unique(X, axis=0, return_index=True)
    distinct = len(first)
    if distinct < min_rows:
        twice = f" ({len(X)} with the rows fed back more than once)" if len(X) != distinct else ""
        raise RetrainingRefused(
            f"too few rows to retrain on: {distinct} distinct rows logged{twice}, at least {min_rows} needed "
            f"so that {1 - holdout:.0%} can be trained on and {holdout:.0%} kept to judge the new model by. "
            "Feed back more labels first (notebook 05 replays the 513 test rows).")
    labels = set(np.unique(y).tolist())
    if not labels <= {0, 1}:
        raise RetrainingRefused(f"labels {sorted(labels)}: the model is binary, labels are 0 and 1")
    if len(labels) == 1:
        raise RetrainingRefused(
            f"the labels are of one class only (all {labels.pop()}): a classifier needs rows of both classes "
            "to learn anything. Feed back labels of the other class too.")
    # Each class must keep MIN_CLASS_ROWS in the training part after the holdout is taken (the split
    # is made over distinct rows: copies of one row count once).
    need = math.ceil(MIN_CLASS_ROWS / (1 - holdout))
    for label in (0, 1):
        n = int((y[first] == label).sum())
        if n < need:
            raise RetrainingRefused(
                f"only {n} distinct rows of class {label} among {distinct}: at least {need} are needed, "
                f"{MIN_CLASS_ROWS} to train on after {holdout:.0%} are kept to judge by. "
                f"Feed back more rows of class {label}.")


def retrain(X, y, base="binary-lr.joblib", holdout=0.3, min_rows=MIN_ROWS, seed=0, shuffle_labels=False,
            sources=None, models_dir=MODELS_DIR):
    """Fits a fresh copy of the current model's estimator on part of the rows and evaluates both
    on the rest. `base`: an artifact of models_dir (or a path), verified against its metadata.json.
    Returns a Retrained; RetrainingRefused when the rows cannot give a model worth checking."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    _refuse_unless_trainable(X, y, holdout, min_rows)
    y = y.astype(int)
    base = Path(base) if os.sep in str(base) else Path(models_dir) / base
    current, base_version = load_verified(str(base))

    # A row fed back twice is logged twice: the split is made over distinct rows, so that no copy of
    # a holdout row is trained on, and the holdout really holds rows the new model never saw.
    distinct, first, group = np.unique(X, axis=0, return_index=True, return_inverse=True)
    train_groups, _ = train_test_split(np.arange(len(distinct)), test_size=holdout, random_state=seed,
                                       stratify=y[first])
    in_train = np.isin(group.ravel(), train_groups)
    X_train, y_train, X_holdout, y_holdout = X[in_train], y[in_train], X[~in_train], y[~in_train]
    for label in (0, 1):
        if (y_train == label).sum() < MIN_CLASS_ROWS:
            raise RetrainingRefused(f"only {(y_train == label).sum()} rows of class {label} to train on, "
                                    f"{MIN_CLASS_ROWS} needed: feed back more rows of class {label}")
    if shuffle_labels:
        # The deliberately bad retrain: labels no longer belong to their rows.
        y_train = np.random.default_rng(seed).permutation(y_train)

    # clone: the same estimator with the same parameters (kit.training.classifiers()'s), unfitted.
    model = clone(current).fit(X_train, y_train)
    return Retrained(model=model, base=base, base_version=base_version,
                     metrics=evaluate(y_holdout, model.predict(X_holdout)),
                     base_metrics=evaluate(y_holdout, current.predict(X_holdout)),
                     X_train=X_train, y_train=y_train, X_holdout=X_holdout, y_holdout=y_holdout,
                     rows=len(X), distinct_rows=len(distinct), holdout=holdout, seed=seed,
                     shuffled_labels=shuffle_labels, sources=sources or {"arrays given to retrain()": len(X)})


def check_candidate(result, max_drop=MAX_ACCURACY_DROP, min_accuracy=MIN_ACCURACY):
    """The checks the candidate fails, each a sentence with its figures; [] when it may be served."""
    new, current = result.metrics["accuracy"], result.base_metrics["accuracy"]
    n = len(result.y_holdout)
    failed = []
    if new < current - max_drop:
        failed.append(f"holdout accuracy {new:.4f} is {current - new:.4f} below the current model's {current:.4f} "
                      f"on the same {n} rows (at most {max_drop} allowed)")
    if new < min_accuracy:
        failed.append(f"holdout accuracy {new:.4f} is below the floor of {min_accuracy} ({n} rows)")
    return failed


class Artifact(NamedTuple):
    path: Path
    sha256: str
    version: str    # as the server names it: 'name@sha256-prefix'


def _rows_sha256(X, y):
    # The training rows as float64 features (n x 30) then int64 labels, both C order.
    digest = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _versions():
    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "joblib": joblib.__version__}


def _readable(path):
    # Root-owned files, read by the image's user 8888 as "other": 0644 whatever the umask.
    os.chmod(path, 0o644)


def write_artifact(result, out_dir=OUT_DIR, max_drop=MAX_ACCURACY_DROP, min_accuracy=MIN_ACCURACY,
                   models_dir=MODELS_DIR):
    """Writes out_dir: a copy of models_dir (artifacts, metadata.json) plus the new artifact, its
    training rows (<stem>.reference.npy) and its metadata entry. Artifacts of earlier retrains left
    in out_dir stay listed, so feedback on their predictions stays acceptable.
    Returns an Artifact; RetrainingRefused, with nothing written, if check_candidate fails."""
    failed = check_candidate(result, max_drop, min_accuracy)
    if failed:
        raise RetrainingRefused("the candidate failed its checks and is not written: " + "; ".join(failed))
    models_dir, out_dir = Path(models_dir), Path(out_dir)
    if out_dir.resolve().is_relative_to(models_dir.resolve()):
        raise RetrainingRefused(f"out_dir {out_dir} is inside {models_dir}, the committed models: write the "
                                "retrained ones elsewhere (build/retrained/models)")
    metadata = json.loads((models_dir / "metadata.json").read_text())
    # The server checks an artifact against metadata.json's top-level versions: a model pickled by
    # other versions than those would be served by libraries it was not made with.
    differ = [f"{k} {metadata['versions'][k]} there, {v} here" for k, v in _versions().items()
              if k != "python" and metadata["versions"][k] != v]
    if differ:
        raise RetrainingRefused(f"this environment is not the one {models_dir / 'metadata.json'} records "
                                f"({'; '.join(differ)}): retrain in venvs/notebooks (make retrain)")
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out_dir, 0o755)
    earlier = {}
    if (out_dir / "metadata.json").exists():
        for name, entry in json.loads((out_dir / "metadata.json").read_text())["models"].items():
            if name not in metadata["models"] and (out_dir / name).is_file() and sha256_of(out_dir / name) == entry["sha256"]:
                earlier[name] = entry
    for f in models_dir.iterdir():
        if f.is_file():
            shutil.copyfile(f, out_dir / f.name)
            _readable(out_dir / f.name)

    # The name holds the artifact's own hash: dumped first, named after.
    candidate = out_dir / ".candidate.joblib"
    joblib.dump(result.model, candidate)
    sha = sha256_of(candidate)
    family = result.base.name.removesuffix(".joblib").split("-retrained-")[0]
    path = out_dir / f"{family}-retrained-{sha[:8]}.joblib"
    os.replace(candidate, path)
    _readable(path)
    reference = path.with_name(path.stem + ".reference.npy")
    # The drift monitor's reference (serving/drift.py): the training rows, each once (a row fed back
    # twice would be a tie the KS test reads as two patients measured alike).
    reference_rows = np.unique(result.X_train, axis=0)
    np.save(reference, np.ascontiguousarray(reference_rows, dtype=np.float64), allow_pickle=False)
    _readable(reference)

    metadata["models"].update(earlier)
    metadata["models"][path.name] = {
        "estimator": type(result.model).__name__,
        "module": type(result.model).__module__,
        "params": {k: v for k, v in result.model.get_params().items() if v is not None},
        "sha256": sha,
        "test_metrics": result.metrics,
        "trained_on": {
            "sources": result.sources,
            "rows": len(result.X_train),
            "rows_sha256": _rows_sha256(result.X_train, result.y_train),
            "rows_sha256_of": "float64 features (rows x 30) then int64 labels, C order",
            "holdout_rows": len(result.X_holdout),
            "holdout": result.holdout,
            "seed": result.seed,
            "shuffled_labels": result.shuffled_labels,
            "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "blas": blas_kernels(),
        },
        "checks": {"against": result.base_version, "its_holdout_metrics": result.base_metrics,
                   "max_accuracy_drop": max_drop, "min_accuracy": min_accuracy, "passed": True},
        "versions": _versions(),
        "reference": {"file": reference.name, "sha256": sha256_of(reference), "rows": len(reference_rows),
                      "features": metadata["models"].get(result.base.name, {}).get("reference", {}).get("features")},
    }
    staged = out_dir / ".metadata.json"
    staged.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    os.replace(staged, out_dir / "metadata.json")
    _readable(out_dir / "metadata.json")
    return Artifact(path, sha, version_of(path.name, sha))


class Image(NamedTuple):
    tag: str
    model_version: str  # what it serves (MODEL_PATH)
    seconds: float      # the build
    size: int           # bytes


def _docker(*args):
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed: " + "\n".join(done.stderr.strip().splitlines()[-10:]))
    return done.stdout.strip()


def _latest_retrained(out_dir):
    models = json.loads((out_dir / "metadata.json").read_text())["models"]
    retrained = {n: m["trained_on"]["trained_at"] for n, m in models.items() if "trained_on" in m}
    if not retrained:
        raise RetrainingRefused(f"{out_dir} holds no retrained artifact: write one first (write_artifact)")
    return max(retrained, key=retrained.get)


# Run inside the built image as its own user: what the server will load, loaded the server's way.
_VERIFY = """
import json, os, numpy as np
from serving.artifacts import load_verified, served_versions
path = os.environ["MODEL_PATH"]
model, version = load_verified(path)
reference = np.load(path.removesuffix(".joblib") + ".reference.npy")
print(json.dumps({"uid": os.getuid(), "version": version, "served": sorted(served_versions(path)),
                  "positives": int(model.predict(reference).sum())}))
"""


def build_image(out_dir=OUT_DIR, tag=None, model=None, base_image=SERVING_IMAGE):
    """A new image version: base_image with out_dir copied over /app/models and MODEL_PATH at `model`
    (an artifact name in out_dir; default the latest retrained one). Verified by loading the model
    inside it; an image that fails that is removed. Returns an Image; RuntimeError if Docker fails."""
    out_dir = Path(out_dir).resolve()
    model = model or _latest_retrained(out_dir)
    expected, _ = load_verified(str(out_dir / model))  # refuse before building, not after
    metadata = json.loads((out_dir / "metadata.json").read_text())
    tag = tag or f"docker-model:{VERSION}-retrained-{metadata['models'][model]['sha256'][:8]}"
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise RuntimeError("no Docker engine answers: the new image cannot be built (--no-image writes the artifact only)")
    if subprocess.run(["docker", "image", "inspect", base_image], capture_output=True).returncode != 0:
        raise RuntimeError(f"no image {base_image} to build on: run `make image` first")
    unreadable = [f.name for f in out_dir.iterdir() if not f.stat().st_mode & 0o004]
    if unreadable:
        raise RuntimeError(f"{unreadable} in {out_dir} are not readable by others: user 8888 of the image could not read them")

    start = time.monotonic()
    _docker("build", "-q", "-f", str(DOCKERFILE), "--build-arg", f"BASE_IMAGE={base_image}",
            "--build-arg", f"MODELS={out_dir.name}", "--build-arg", f"MODEL_FILE={model}",
            "--build-arg", f"IMAGE_VERSION={tag.rsplit(':', 1)[-1]}", "-t", tag, str(out_dir.parent))
    seconds = time.monotonic() - start
    try:
        found = json.loads(_docker("run", "--rm", "--network", "none", "--entrypoint", "python3", tag, "-c", _VERIFY))
        reference = np.load(out_dir / metadata["models"][model]["reference"]["file"])
        wanted = {"uid": int(IMAGE_USER.split(":")[0]), "version": version_of(model, metadata["models"][model]["sha256"]),
                  "served": sorted(version_of(n, m["sha256"]) for n, m in metadata["models"].items()),
                  "positives": int(expected.predict(reference).sum())}
        if found != wanted:
            raise RuntimeError(f"the image {tag} does not serve what was written: inside {found}, expected {wanted}")
    except BaseException:
        _docker("image", "rm", "-f", tag)
        raise
    return Image(tag, wanted["version"], seconds, int(_docker("image", "inspect", "-f", "{{.Size}}", tag)))


def _say(message):
    print(f"[retrain] {message}", flush=True)


def _figures(m):
    return (f"accuracy {m['accuracy']:.4f} F1 {m['f1_score']:.4f} "
            f"(TP {m['tp']} FP {m['fp']} TN {m['tn']} FN {m['fn']})")


def _ago(text):
    """'30m', '2h', '7d' (or seconds): the Unix time that long ago."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r}: an age such as 30m, 2h or 7d") from None
    return time.time() - seconds


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m kit.retraining", description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="sources", action="append", metavar="SOURCE",
                   help="a container name or a feedback .sqlite file, repeatable; default: the running "
                        f"containers among {', '.join(CONTAINERS)}")
    p.add_argument("--since", type=_ago, metavar="AGE",
                   help="only the rows logged within AGE (30m, 2h, 7d): the recent traffic, not the oldest "
                        "(notebook 06 feeds back wrong labels on purpose)")
    p.add_argument("--base", default="binary-lr.joblib", help="the current model: an artifact of models/ or a path")
    p.add_argument("--min-rows", type=int, default=MIN_ROWS, help=f"distinct rows needed (default {MIN_ROWS})")
    p.add_argument("--holdout", type=float, default=0.3, help="the fraction of rows kept to judge by (0.3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shuffle-labels", action="store_true", help="the deliberately bad retrain: permuted labels")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--tag", help="the new image's tag (default docker-model:VERSION-retrained-<sha256 prefix>)")
    p.add_argument("--no-image", action="store_true", help="write the artifact only")
    args = p.parse_args(argv)
    try:
        sources = args.sources or default_sources()
        feedback = logged_feedback(sources, since=args.since)
        for source in sources:
            versions = feedback.counts().get(str(source), {})
            _say(f"{source}: {sum(versions.values())} rows ({', '.join(f'{v} {n}' for v, n in versions.items())})")
        result = retrain(feedback.X, feedback.y, base=args.base, holdout=args.holdout, min_rows=args.min_rows,
                         seed=args.seed, shuffle_labels=args.shuffle_labels, sources=feedback.counts())
    except (RetrainingRefused, FileNotFoundError, RuntimeError) as err:
        _say(f"refused: {err}")
        return 2
    judged = len(np.unique(result.X_holdout, axis=0))
    _say(f"{result.rows} rows, {result.distinct_rows} distinct: trained on {len(result.X_train)}, judged on "
         f"{len(result.X_holdout)}" + (f" ({judged} distinct)" if judged != len(result.X_holdout) else "")
         + f" it never saw (seed {result.seed})"
         + (", training labels shuffled" if result.shuffled_labels else ""))
    width = len(result.base_version) + len("current ")
    _say(f"{'current ' + result.base_version:<{width}}  {_figures(result.base_metrics)}")
    _say(f"{'new':<{width}}  {_figures(result.metrics)}")
    failed = check_candidate(result)
    if failed:
        for failure in failed:
            _say(f"check failed: {failure}")
        _say("nothing written, no image built: what is served stays as it is")
        return 1
    _say(f"checks passed: within {MAX_ACCURACY_DROP} of the current model's accuracy, above {MIN_ACCURACY}")
    try:
        artifact = write_artifact(result, args.out_dir)
    except RetrainingRefused as err:
        _say(f"refused: {err}")
        return 2
    _say(f"artifact {_shown(artifact.path)} sha256 {artifact.sha256}")
    if args.no_image:
        return 0
    try:
        image = build_image(args.out_dir, tag=args.tag, model=artifact.path.name)
    except RuntimeError as err:
        _say(f"no image: {err}")
        return 3
    _say(f"image {image.tag} built in {image.seconds:.1f} s, {image.size / 1e6:.0f} MB; inside it, user 8888 "
         f"loads {image.model_version}, verified")
    _say(f"serve it: make stop; make serve IMAGE={image.tag} (the feedback volume is kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
