import os

import pytest

from kit.client import ModelClient


@pytest.fixture(scope="session")
def client():
    """The served model on :9000 (make test starts it); the container tests are skipped without it."""
    c = ModelClient(os.environ.get("MODEL_URL", "http://localhost:9000"))
    if not c.is_up():
        pytest.skip("no model server answers on :9000: run `make serve` (make test does)")
    return c


@pytest.fixture(scope="session")
def test_set():
    from kit.training import load_test_set

    return load_test_set()
