"""Training the article's two models, exactly as it does, and recording what was trained."""
import json
import platform
import warnings

import joblib
import numpy as np
import sklearn
from sklearn import datasets
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_info

from serving.artifacts import sha256_of
from kit import MODELS_DIR, TEST_SET

SPLIT = {"test_size": 0.9, "random_state": 0}
FEATURE_NAMES = [f"feature_{i}" for i in range(30)]


def classifiers():
    """The article's two classifiers, by artifact name. It also passed multi_class="ovr" to the
    LogisticRegression: removed in scikit-learn 1.7, and what liblinear does anyway."""
    return {
        "binary-lr.joblib": LogisticRegression(solver="liblinear"),
        "binary-percept.joblib": Perceptron(eta0=0.1, random_state=0),
    }


def load_split():
    """X_train, X_test, y_train, y_test: 56 training rows and 513 test rows."""
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, **SPLIT)


def feature_names():
    """The 30 measurements of the data set, 'mean radius' to 'worst fractal dimension'."""
    return [str(name) for name in datasets.load_breast_cancer().feature_names]


def save_reference(X_train, path):
    """The rows a model was trained on, for the drift monitor (serving/drift.py): its entry in
    models/metadata.json."""
    np.save(path, np.ascontiguousarray(X_train, dtype=np.float64), allow_pickle=False)
    return {"file": path.name, "sha256": sha256_of(path), "rows": len(X_train), "features": feature_names()}


def evaluate(y_true, y_pred):
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        "accuracy": accuracy_score(y_true, y_pred),
        "precision": precision_score(y_true, y_pred),
        "recall": recall_score(y_true, y_pred),
        "f1_score": f1_score(y_true, y_pred),
    }


def blas_kernels():
    """The OpenBLAS builds loaded (numpy's, scipy's) and the kernels each one runs."""
    return sorted({f"{i['internal_api']} {i.get('version')} {i.get('architecture')}"
                   for i in threadpool_info() if i.get("user_api") == "blas"})


def warn_unless_committed_kernels(kernels):
    if platform.machine() == "x86_64" and any(not k.endswith(" Haswell") for k in kernels):
        warnings.warn(f"OpenBLAS runs {kernels} here, not the Haswell (AVX2) kernels the committed "
                      "artifacts were fitted with: the fit may be two borderline rows apart. Run through make "
                      "(`make models`, `make lab`), which sets OPENBLAS_CORETYPE=Haswell, to get them exactly.",
                      stacklevel=2)


def train_models(models_dir=MODELS_DIR, test_set=TEST_SET):
    """Fits both models, saves them, the 513-row test set and models/metadata.json; returns the metadata."""
    kernels = blas_kernels()
    warn_unless_committed_kernels(kernels)
    X_train, X_test, y_train, y_test = load_split()
    models_dir.mkdir(parents=True, exist_ok=True)
    metadata = {
        "dataset": "sklearn.datasets.load_breast_cancer",
        "split": {**SPLIT, "train_rows": len(X_train), "test_rows": len(X_test)},
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
        # liblinear's fit depends on the OpenBLAS kernels (AVX-512 vs AVX2: two rows apart): the
        # Makefile asks for the AVX2 (Haswell) ones on every x86-64 CPU.
        "blas": kernels,
        "models": {},
    }
    # Both models are fitted on the same rows: one reference file serves both.
    reference = save_reference(X_train, models_dir / "training-rows.npy")
    for name, clf in classifiers().items():
        clf.fit(X_train, y_train)
        path = models_dir / name
        joblib.dump(clf, path)
        metadata["models"][name] = {
            "estimator": type(clf).__name__,
            # what unpickling it imports: serving.tuning.fast_start imports it while seldon-core is imported
            "module": type(clf).__module__,
            "params": {k: v for k, v in clf.get_params().items() if v is not None},
            "sha256": sha256_of(path),
            "test_metrics": evaluate(y_test, clf.predict(X_test)),
            "reference": reference,
        }
    (models_dir / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    save_test_set(X_test, y_test, test_set)
    return metadata


def save_test_set(X_test, y_test, path=TEST_SET):
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [",".join(FEATURE_NAMES + ["target"])]
    rows += [",".join(repr(float(v)) for v in x) + f",{int(t)}" for x, t in zip(X_test, y_test)]
    path.write_text("\n".join(rows) + "\n")


def load_test_set(path=TEST_SET):
    """X_test (513 x 30 floats) and y_test (513 labels), as saved for replay."""
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    return table[:, :-1], table[:, -1].astype(int)


if __name__ == "__main__":
    meta = train_models()
    for name, info in meta["models"].items():
        m = info["test_metrics"]
        print(f"{name}: TP {m['tp']} FP {m['fp']} TN {m['tn']} FN {m['fn']} accuracy {m['accuracy']:.8f}")
