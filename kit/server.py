"""Starting and stopping the model server from a notebook, through the project's own script."""
import os
import shutil
import subprocess

from kit import REPO_ROOT
from kit.client import ModelClient
from kit.progress import run

SERVE = REPO_ROOT / "scripts" / "serve" / "serve.sh"


def engine_available():
    """True when a Docker engine answers."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def ensure_serving(client=None):
    """Starts the server (scripts/serve/serve.sh: Docker, or the serving venv) unless one answers already."""
    client = client or ModelClient()
    if client.is_up():
        return "a model server already answers on :9000"
    run(["bash", str(SERVE), "start"])
    return "started " + ("the docker-model container" if engine_available() else "the local serving venv")


def stop_serving():
    subprocess.run(["bash", str(SERVE), "stop"], check=True, capture_output=True)


def container_running(name):
    if not engine_available():
        return False
    ids = subprocess.run(["docker", "ps", "-q", "-f", f"name=^{name}$"], capture_output=True, text=True).stdout
    return bool(ids.strip())


def feedback_log_rows(container="docker-model"):
    """Every row of a served model's durable feedback log (oldest first), as dicts: read inside the
    container where one runs, else from the local server's build/feedback.sqlite."""
    import json

    if container_running(container):
        out = subprocess.run(["docker", "exec", container, "python3", "-m", "serving.feedback_log"],
                             capture_output=True, text=True, check=True).stdout
        return [json.loads(line) for line in out.splitlines()]
    from serving.feedback_log import FeedbackLog

    return FeedbackLog(str(REPO_ROOT / "build" / "feedback.sqlite")).rows()


BALANCER_URL = "http://localhost:9000"


def scale(replicas=3, workers=2, weights=None, models=None, images=None, show=True):
    """Starts the replicas of deploy/compose.scale.yml behind the balancer (scripts/serve/scale.sh),
    with `weights` (one per replica), `models` (an artifact per replica) and `images` (an image
    version per replica) if given; returns the balancer's URL, the one clients call, and the
    replicas' metrics URLs."""
    env = {**os.environ, "WEIGHTS": ",".join(str(w) for w in weights or []), "MODELS": ",".join(models or []),
           "IMAGES": ",".join(images or [])}
    run(["bash", "scripts/serve/scale.sh", "up", str(replicas), str(workers)], show=show, env=env)
    return BALANCER_URL, [f"http://localhost:600{i}/metrics" for i in range(1, replicas + 1)]


def scale_down(show=True):
    run(["bash", "scripts/serve/scale.sh", "down"], show=show)
