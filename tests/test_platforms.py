"""The platforms the kit is made for (scripts/environments/platforms.py): the choices for any
(system, machine), and requirements.lock against the package registry: for every serving platform,
pip downloads the file it picks there and finds its hash in the lock. Those downloads need PyPI; the
files stay in build/platform-wheels, so a second run only asks the index."""
import hashlib
import subprocess
import sys

import pytest

from kit import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts" / "environments"))
import platforms  # noqa: E402
from lock_requirements import SOURCE_ONLY  # noqa: E402

LOCK = REPO_ROOT / "requirements.lock"
DOWNLOADS = REPO_ROOT / "build" / "platform-wheels"


# --- the choices ---------------------------------------------------------------------------------

def test_manylinux_tags_run_from_glibc_2_28_down_with_the_legacy_names_in_place():
    x86 = platforms.manylinux_tags("x86_64")
    assert x86[0] == "manylinux_2_28_x86_64" and x86[-1] == "manylinux1_x86_64"
    assert x86.index("manylinux2014_x86_64") == x86.index("manylinux_2_17_x86_64") + 1
    assert x86.index("manylinux2010_x86_64") == x86.index("manylinux_2_12_x86_64") + 1
    arm = platforms.manylinux_tags("aarch64")
    assert arm[0] == "manylinux_2_28_aarch64" and arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert platforms.manylinux_tags("arm64") == arm


@pytest.mark.parametrize("docker_architecture, machine, docker, debian, triplet", [
    ("x86_64", "x86_64", "linux/amd64", "amd64", "x86_64-linux-gnu"),
    ("aarch64", "aarch64", "linux/arm64", "arm64", "aarch64-linux-gnu"),
    ("aarch64", "arm64", "linux/arm64", "arm64", "aarch64-linux-gnu"),  # Docker Desktop on Apple silicon
    ("x86_64", "arm64", "linux/amd64", "amd64", "x86_64-linux-gnu"),    # the engine's, not the host's
    (None, "x86_64", "linux/amd64", "amd64", "x86_64-linux-gnu"),       # no engine: uname -m
    (None, "arm64", "linux/arm64", "arm64", "aarch64-linux-gnu"),
    ("amd64", "", "linux/amd64", "amd64", "x86_64-linux-gnu"),
])
def test_the_image_is_built_for_the_engines_architecture(docker_architecture, machine, docker, debian, triplet):
    arch = platforms.image_platform(docker_architecture, machine)
    assert (arch.docker, arch.debian, arch.triplet) == (docker, debian, triplet)
    assert platforms.wheelhouse(arch.platform) == "build/wheels"


@pytest.mark.parametrize("machine", ["armv7l", "riscv64", "ppc64le", "i686"])
def test_other_architectures_are_refused_with_the_reason(machine):
    with pytest.raises(platforms.Unsupported, match=f"x86-64 and arm64, not {machine}"):
        platforms.image_platform(None, machine)


@pytest.mark.parametrize("system, machine, version, expected", [
    ("Linux", "x86_64", "", "linux-x86_64"),
    ("Linux", "aarch64", "", "linux-aarch64"),
    ("Darwin", "arm64", "14.5", "macos-14-arm64"),
    ("Darwin", "arm64", "12.0.1", "macos-12-arm64"),
    ("Darwin", "arm64", "26.1", "macos-26-arm64"),
    ("Darwin", "x86_64", "11.7.10", "macos-11-x86_64"),
    ("Darwin", "x86_64", "15.3", "macos-15-x86_64"),
])
def test_the_local_serving_platform(system, machine, version, expected):
    assert platforms.local_serving(system, machine, version) == expected


@pytest.mark.parametrize("system, machine, version, reason", [
    ("Darwin", "arm64", "11.7", "macOS 12 or later on arm64"),
    ("Darwin", "x86_64", "10.15.7", "macOS 11 or later on x86_64"),
    ("Linux", "armv7l", "", "not armv7l"),
    ("Windows", "AMD64", "", "Linux and macOS, not Windows"),
])
def test_no_local_serving_where_the_wheels_are_missing(system, machine, version, reason):
    with pytest.raises(platforms.Unsupported, match=reason):
        platforms.local_serving(system, machine, version)


def test_every_macos_version_served_locally_is_in_the_lock():
    for machine, versions in platforms.MACOS_VERSIONS.items():
        for version in versions:
            assert platforms.local_serving("Darwin", machine, version + ".1") in platforms.serving_platforms()


def test_a_mac_has_its_own_wheelhouse_and_pip_target():
    assert platforms.wheelhouse("macos-14-arm64") == "build/wheels-macos-14-arm64"
    assert platforms.pip_target("macos-14-arm64") == [
        "--platform", "macosx_14_0_arm64", "--python-version", "3.11", "--implementation", "cp"]
    assert platforms.pip_platform_tags("macos-11-x86_64") == ["macosx_11_0_x86_64"]


@pytest.mark.parametrize("wheels, system, machine, strips", [
    ("linux-x86_64", "Linux", "x86_64", True),
    ("linux-aarch64", "Linux", "aarch64", True),
    ("linux-aarch64", "Linux", "x86_64", False),   # another machine's ELF files
    ("linux-aarch64", "Darwin", "arm64", False),   # macOS's strip is not GNU's
    ("macos-14-arm64", "Darwin", "arm64", False),
])
def test_wheels_are_stripped_only_on_the_linux_they_are_for(wheels, system, machine, strips):
    assert platforms.strips_here(wheels, system, machine) is strips


def never_pulled():
    raise AssertionError("a pull was tried although an earlier source does")


@pytest.mark.parametrize("system, binaries, apt, root_or_sudo, pullable, expected", [
    ("Darwin", True, False, False, never_pulled, "binaries"),        # Homebrew's
    ("Linux", True, True, True, never_pulled, "binaries"),           # the user's own before apt
    ("Linux", False, True, True, never_pulled, "apt"),
    ("Linux", False, True, False, lambda: True, "docker"),           # apt, but no root and no sudo -n
    ("Linux", False, False, True, lambda: True, "docker"),           # no apt (Fedora, Arch...)
])
def test_where_prometheus_comes_from(system, binaries, apt, root_or_sudo, pullable, expected):
    assert platforms.prometheus_source(system, binaries, apt, root_or_sudo, pullable) == expected


@pytest.mark.parametrize("system, how", [
    ("Darwin", "brew install prometheus blackbox_exporter"),
    ("Linux", "sudo apt install prometheus prometheus-blackbox-exporter"),
])
def test_no_prometheus_says_how_to_install_it(system, how):
    # macOS: never the images, whose containers do not share the Mac's 127.0.0.1
    with pytest.raises(platforms.Unsupported) as refused:
        platforms.prometheus_source(system, False, False, False, lambda: system == "Darwin")
    assert how in str(refused.value) and "make monitor" in str(refused.value)


@pytest.mark.parametrize("system, how", [
    ("Darwin", "brew install python@3.11"),
    ("Darwin", "https://www.python.org/downloads/"),
    ("Linux", "sudo apt install python3.11 python3.11-venv"),
    ("Linux", "pyenv install 3.11"),
])
def test_the_python_hint_says_how_to_get_it_here(system, how):
    hint = platforms.python_hint(system)
    assert how in hint and "'make setup' again" in hint


# --- the lock against the registry ---------------------------------------------------------------

def lock_lines():
    return [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]


def download(lines, *pip_args, dest=DOWNLOADS, tmp_path):
    requirements = tmp_path / "lock.txt"
    requirements.write_text("\n".join(lines) + "\n")
    dest.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
                           "--progress-bar", "off", "-d", str(dest), *pip_args, "-r", str(requirements)],
                          capture_output=True, text=True, timeout=600)


def download_wheels(platform_name, lines, tmp_path, dest=DOWNLOADS):
    return download([line for line in lines if not line.endswith(SOURCE_ONLY)], "--only-binary", ":all:",
                    *platforms.pip_target(platform_name), dest=dest, tmp_path=tmp_path)


def test_every_package_is_pinned_and_hashed():
    lines = lock_lines()
    assert len(lines) > 40
    for line in lines:
        assert "==" in line.split()[0] and " --hash=sha256:" in line, line
    assert sum(line.endswith(SOURCE_ONLY) for line in lines) == 4  # image/README.md: four source-only packages


@pytest.mark.parametrize("platform_name", platforms.serving_platforms())
def test_the_lock_holds_the_hash_of_every_wheel_pip_picks_there(platform_name, tmp_path):
    done = download_wheels(platform_name, lock_lines(), tmp_path)
    assert done.returncode == 0, f"{platform_name}:\n{done.stderr[-3000:]}"


def test_the_lock_holds_the_hashes_of_the_source_archives(tmp_path):
    sources = [line for line in lock_lines() if line.endswith(SOURCE_ONLY)]
    done = download(sources, "--no-binary", ":all:", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_lock_without_numpys_aarch64_hash_fails_the_check(tmp_path):
    """The check can fail: numpy's line without the hash of the aarch64 wheel it was just shown to hold."""
    assert download_wheels("linux-aarch64", lock_lines(), tmp_path).returncode == 0
    wheel = next(DOWNLOADS.glob("numpy-1.26.4-cp311-cp311-*aarch64*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    numpy = [line.replace(f" --hash=sha256:{digest}", "") for line in lock_lines() if line.startswith("numpy==")]
    assert numpy and digest not in numpy[0]
    done = download_wheels("linux-aarch64", numpy, tmp_path, dest=tmp_path / "downloads")
    assert done.returncode != 0 and "DO NOT MATCH THE HASHES" in done.stderr, done.stderr[-3000:]
