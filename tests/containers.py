"""Throwaway containers of the model image for the fault tests: own name, ports and volume."""
import contextlib
import os
import subprocess
import time

import requests

from kit import REPO_ROOT

IMAGE = "docker-model:" + (REPO_ROOT / "VERSION").read_text().strip()


def docker(*args, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout.strip()


def engine_available():
    try:
        return subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def wait_healthy(base_url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(base_url + "/health/status", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} did not become healthy in {seconds} s")


@contextlib.contextmanager
def model_container(name, rest_port, metrics_port, *run_args, workers=2, feedback_tmpfs_size=None):
    """Runs the image as `name` on loopback ports with a fresh volume; removes both afterwards.
    feedback_tmpfs_size ("2m"): the feedback log on a size-limited tmpfs instead, to fill it up."""
    volume = f"{name}-feedback"
    if feedback_tmpfs_size:
        # Owned by the image's user 8888 (--mount's tmpfs-mode is not applied by every engine).
        mount = ["--tmpfs", f"/var/lib/docker-model:size={feedback_tmpfs_size},uid=8888,gid=8888,mode=0700"]
    else:
        mount = ["-v", f"{volume}:/var/lib/docker-model"]
    docker("rm", "-f", name, check=False)
    docker("volume", "rm", "-f", volume, check=False)
    docker("run", "-d", "--init", "--name", name, "-e", f"GUNICORN_WORKERS={workers}",
           "-e", f"SERVING_TUNING={os.environ.get('SERVING_TUNING', 'on')}",
           "-p", f"127.0.0.1:{rest_port}:9000", "-p", f"127.0.0.1:{metrics_port}:6000",
           *mount, "--read-only", "--tmpfs", "/tmp",
           "--cap-drop", "ALL", "--security-opt", "no-new-privileges", *run_args, IMAGE)
    base_url = f"http://127.0.0.1:{rest_port}"
    try:
        wait_healthy(base_url)
        yield base_url, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        docker("rm", "-f", name, check=False)
        docker("volume", "rm", "-f", volume, check=False)
