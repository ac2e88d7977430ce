"""What the notebooks share: training, the HTTP client, feedback replay and server control.

The serving code itself lives at the top of the repository (DockerModel.py, feedback_log.py,
request_guard.py), because that is what goes into the image.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
DATA_DIR = REPO_ROOT / "data"
TEST_SET = DATA_DIR / "test_set.csv"
