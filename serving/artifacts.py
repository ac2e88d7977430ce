"""The model artifact, loaded only if it is the one models/metadata.json recorded at training time."""
import hashlib
import json
import logging
import os

import joblib

DEFAULT_MODEL_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "models", "binary-lr.joblib")


logger = logging.getLogger(__name__)


class ModelMismatch(RuntimeError):
    """The artifact is not the one recorded in models/metadata.json: the server must not start."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_of(name, sha256):
    return f"{name}@{sha256[:12]}"


def served_versions(path):
    """The versions of every artifact models/metadata.json records beside `path`: the models the kit serves."""
    with open(os.path.join(os.path.dirname(path), "metadata.json")) as f:
        return {version_of(name, m["sha256"]) for name, m in json.load(f)["models"].items()}


def load_verified(path):
    """(the fitted model, its version 'name@sha256-prefix'), after checking the artifact against
    the metadata written beside it at training time; ModelMismatch otherwise."""
    import sklearn

    metadata_path = os.path.join(os.path.dirname(path), "metadata.json")
    with open(metadata_path) as f:
        metadata = json.load(f)
    name = os.path.basename(path)
    recorded = metadata["models"].get(name)
    if recorded is None:
        raise ModelMismatch(f"{name} is not listed in {metadata_path}: retrain with `make models`")
    actual = sha256_of(path)
    if actual != recorded["sha256"]:
        raise ModelMismatch(f"{path} has sha256 {actual}, but {metadata_path} records "
                            f"{recorded['sha256']}: the artifact was changed or corrupted")
    trained_with = metadata["versions"]["scikit-learn"]
    if trained_with != sklearn.__version__:
        raise ModelMismatch(f"{name} was trained with scikit-learn {trained_with}, this environment has "
                            f"{sklearn.__version__}: pin the same version (constraints.txt) or retrain")
    version = version_of(name, actual)
    model = joblib.load(path)
    logger.info("Model %s loaded and verified", version)
    return model, version
