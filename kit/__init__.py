"""What the notebooks share: training, the HTTP client, feedback replay and server control.

The serving code itself, what goes into the image, is DockerModel.py and the serving/ package.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
DATA_DIR = REPO_ROOT / "data"
TEST_SET = DATA_DIR / "test_set.csv"
