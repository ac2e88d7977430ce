"""make bundle, then `make setup BUNDLE=...` with no network: a fresh clone of the kit plus the bundle,
inside a network namespace that has only loopback, creates both environments and loads the images.

The images are bundled under tags of this test's own (the engine's docker-model:1.0.0 and base image,
which others use, are only tagged again, never replaced), removed before the install and loaded from
the bundle by it. Needs root (`ip netns add`), iproute2, a Docker engine and the engine's image (make
image); the bundle's wheels are fetched from the package registry when requirements changed.
"""
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from kit import REPO_ROOT
from tests.containers import IMAGE, engine_available

SERVING_COPY = "docker-model:bundle-test"
BASE = "local/bookworm-python:3.11"
BASE_COPY = "local/bookworm-python:bundle-test"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root, for `ip netns add`: run the tests as root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs the ip command: apt-get install iproute2"),
    pytest.mark.skipif(not engine_available(), reason="needs a Docker engine: the bundle holds its images"),
]


def run(*command, timeout, cwd=REPO_ROOT, env=None, check=True):
    """Runs a command in a process group of its own, killed whole when it outlasts its timeout."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"{' '.join(command)} did not finish in {timeout} s:\n{output[-3000:]}")
    if check and process.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({process.returncode}):\n{output[-3000:]}")
    return process.returncode, output


def docker_has(image):
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def untag(image):
    subprocess.run(["docker", "rmi", image], capture_output=True)


def clone_of_the_work_tree(dest):
    """A fresh git clone, plus this work tree's uncommitted changes: what is tested is what is here."""
    run("git", "clone", "--quiet", str(REPO_ROOT), str(dest), timeout=120)
    changed = run("git", "ls-files", "--modified", "--others", "--exclude-standard", "-z", timeout=30)[1]
    for name in filter(None, changed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
        else:
            (dest / name).unlink(missing_ok=True)


def images_in(bundle):
    """The image names the bundle's `docker save` holds."""
    with tarfile.open(bundle) as outer:
        with tarfile.open(fileobj=gzip.open(outer.extractfile("docker-images.tar.gz")), mode="r|") as saved:
            for member in saved:
                if member.name == "manifest.json":
                    return {tag for image in json.load(saved.extractfile(member)) for tag in image["RepoTags"]}
    raise AssertionError("the bundle's docker-images.tar.gz has no manifest.json")


class Offline:
    """The namespace, the clone set up in it, and what was seen."""

    def __init__(self, name, work):
        self.name, self.work, self.kit, self.home = name, work, work / "kit", work / "home"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
        # Nothing of this user's: no pip cache to fall back on, the Jupyter kernel written here.
        self.env.update(HOME=str(self.home), JUPYTER_DATA_DIR=str(self.home / "jupyter"), PIP_NO_CACHE_DIR="1")

    def run(self, *command, timeout=60, check=True):
        return run("ip", "netns", "exec", self.name, *command, cwd=self.kit, env=self.env, timeout=timeout,
                   check=check)


@pytest.fixture(scope="module")
def offline():
    if not docker_has(IMAGE) or not docker_has(BASE):
        pytest.skip(f"needs the images {IMAGE} and {BASE}: run `make image` first")
    work = Path(tempfile.mkdtemp(prefix="kit-bundle-test-"))
    ns = Offline(f"kit-bundle-{os.getpid()}", work)
    ns.home.mkdir()
    try:
        run("docker", "tag", IMAGE, SERVING_COPY, timeout=30)
        run("docker", "tag", BASE, BASE_COPY, timeout=30)
        env = dict(os.environ, IMAGE=SERVING_COPY, LOCAL_BASE_IMAGE=BASE_COPY, BUNDLE_DIR=str(work))
        ns.bundle = Path(run("bash", "scripts/environments/bundle.sh", timeout=600, env=env)[1].splitlines()[-1])
        ns.images = images_in(ns.bundle)
        for image in (SERVING_COPY, BASE_COPY):
            untag(image)
        ns.absent_before = not any(docker_has(image) for image in ns.images)

        clone_of_the_work_tree(ns.kit)
        run("ip", "netns", "add", ns.name, timeout=30)
        ns.run("ip", "link", "set", "lo", "up")
        ns.install_rc, ns.install_log = ns.run("make", "setup", f"BUNDLE={ns.bundle}", timeout=900, check=False)
        yield ns
    finally:
        pids = subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True, text=True).stdout.split()
        for pid in pids:  # only what this test started in its namespace
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True, timeout=30)
        for image in (SERVING_COPY, BASE_COPY):
            untag(image)
        shutil.rmtree(work, ignore_errors=True)


def test_the_namespace_has_no_network_but_loopback(offline):
    links = offline.run("ip", "-o", "link")[1]
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    assert "default" not in offline.run("ip", "route", "show", "table", "all")[1]

    fetch = ("python3", "-m", "pip", "download", "-vv", "--no-deps", "--retries", "0", "--timeout", "5",
             "-d", str(offline.work / "download"), "requests==2.32.3")
    rc, output = offline.run(*fetch, check=False)
    assert rc != 0 and "Failed to establish a new connection" in output, output[-2000:]
    # The same download outside the namespace works: it is the namespace that cuts the registry off.
    run(*fetch, timeout=120)


def test_setup_from_the_bundle_creates_both_environments_offline(offline):
    assert offline.install_rc == 0, offline.install_log[-3000:]
    assert "[setup] creating venvs/serving" in offline.install_log
    assert "[setup] creating venvs/notebooks" in offline.install_log
    offline.run("venvs/serving/bin/python", "-c", "import seldon_core, sklearn, DockerModel, serving")
    offline.run("venvs/notebooks/bin/python", "-c", "import jupyterlab, papermill, nbval, pandas, kit")
    kernel = json.loads((offline.home / "jupyter" / "kernels" / "docker-model-kit" / "kernel.json").read_text())
    assert kernel["argv"][0] == str(offline.kit / "venvs" / "notebooks" / "bin" / "python")


def test_setup_from_the_bundle_loads_its_images(offline):
    assert SERVING_COPY in offline.images
    assert offline.absent_before, "the bundle's images were still tagged before the install: nothing proven"
    for image in offline.images:
        assert f"Loaded image: {image}" in offline.install_log
        assert docker_has(image)


def test_the_bundled_debian_packages_install_offline(offline):
    """Debian's prometheus and what it needs, on this system as it was without them: apt plans every
    package from the bundle's files, none from a mirror (simulated: nothing is installed)."""
    debs = sorted((offline.kit / "build" / "debs").glob("*.deb"))
    assert any(deb.name.startswith("prometheus_") for deb in debs)
    bundled = {deb.name.split("_")[0] for deb in debs}
    status = offline.work / "dpkg-status"
    status.write_text(status_without(Path("/var/lib/dpkg/status").read_text(), bundled))
    missing = [str(deb) for deb in debs if f"\nPackage: {deb.name.split('_')[0]}\n" not in "\n" + status.read_text()]
    rc, plan = offline.run("apt-get", "install", "-s", "-o", f"Dir::State::status={status}",
                           "--no-install-recommends", *missing, check=False)
    assert rc == 0, plan[-2000:]
    planned = [line for line in plan.splitlines() if line.startswith("Inst ")]
    assert len(planned) == len(missing) and all("local-deb" in line for line in planned), plan[-2000:]


def status_without(status, packages):
    """dpkg's status without those of the packages that nothing left installed depends on."""
    stanzas = [s for s in status.split("\n\n") if s.strip()]

    def name(stanza):
        return re.match(r"Package: (\S+)", stanza).group(1)

    def depends(stanza):
        for field in re.findall(r"^(?:Pre-)?Depends: (.*)$", stanza, re.MULTILINE):
            for group in field.split(","):
                yield from (re.sub(r"\(.*?\)|:\S+", "", alt).strip() for alt in group.split("|"))

    removed = set(packages)
    while True:
        needed = {dep for stanza in stanzas if name(stanza) not in removed for dep in depends(stanza)}
        if not removed & needed:
            return "\n\n".join(s for s in stanzas if name(s) not in removed) + "\n\n"
        removed -= needed


def test_a_bundle_made_for_other_requirements_is_refused(offline):
    constraints = offline.kit / "constraints.txt"
    kept = constraints.read_text()
    constraints.write_text(kept + "# changed after the bundle was made\n")
    try:
        rc, output = offline.run("make", "setup", f"BUNDLE={offline.bundle}", check=False)
    finally:
        constraints.write_text(kept)
    assert rc != 0
    assert "was made from other requirement files than this checkout's" in output
