"""Starting and stopping the model server from a notebook, through the project's own script."""
import shutil
import subprocess

from kit import REPO_ROOT
from kit.client import ModelClient

SERVE = REPO_ROOT / "scripts" / "serve.sh"


def engine_available():
    """True when a Docker engine answers."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def ensure_serving(client=None):
    """Starts the server (scripts/serve.sh: Docker, or the serving venv) unless one answers already."""
    client = client or ModelClient()
    if client.is_up():
        return "a model server already answers on :9000"
    done = subprocess.run(["bash", str(SERVE), "start"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"could not start the model server:\n{done.stderr}")
    return "started " + ("the docker-model container" if engine_available() else "the local serving venv")


def stop_serving():
    subprocess.run(["bash", str(SERVE), "stop"], check=True, capture_output=True)
