"""What the kit makes for which machine: the pip platform tags of the serving wheels, the platform of
the image, whether venvs/serving can be made here, and where Prometheus comes from.

The functions are pure, so tests/test_platforms.py can ask them about any (system, machine); the
command line gathers this machine's facts for the shell scripts:

    python3 scripts/environments/platforms.py image platform|docker|debian|triplet
    python3 scripts/environments/platforms.py local-serving        the platform of venvs/serving here
    python3 scripts/environments/platforms.py wheelhouse PLATFORM   the directory of its wheelhouse
    python3 scripts/environments/platforms.py pip-target PLATFORM   pip's arguments to download for it
    python3 scripts/environments/platforms.py strip PLATFORM        exit 0 if its wheels are stripped here
    python3 scripts/environments/platforms.py prometheus IMAGE...   binaries, apt or docker (those images)
    python3 scripts/environments/platforms.py python-hint           how to install Python 3.11 here

A question with no answer here exits 1 with the reason on stderr. Standard library only, and any
python3 from 3.8 (macOS's own is 3.9): the scripts ask before Python 3.11 is known to be there.
"""
import os
import platform
import shutil
import subprocess
import sys

PYTHON_VERSION = "3.11"

# The newest manylinux the serving wheels may need: glibc 2.28 (Debian 10, Ubuntu 20.04, RHEL 8 and
# later). A fixed ceiling, not the host's glibc, so that the lock and every wheelhouse pick the same
# files wherever they are made.
NEWEST_GLIBC_MINOR = 28


class Linux:
    """One Linux architecture the image and venvs/serving are made for."""

    def __init__(self, machine, docker, debian, oldest_glibc_minor, legacy_tags):
        self.machine = machine  # uname -m, and the arch of the manylinux tags
        self.platform = f"linux-{machine}"  # its name among the serving platforms
        self.docker = docker  # docker build/pull --platform
        self.debian = debian  # debootstrap --arch
        self.triplet = f"{machine}-linux-gnu"  # Debian's multiarch directory, /usr/lib/<triplet>
        self.oldest_glibc_minor = oldest_glibc_minor
        self.legacy_tags = legacy_tags  # glibc minor -> the manylinux name of before PEP 600


LINUX = {
    "x86_64": Linux("x86_64", "linux/amd64", "amd64", 5, {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}),
    # manylinux2014 is the first manylinux with aarch64.
    "aarch64": Linux("aarch64", "linux/arm64", "arm64", 17, {17: "manylinux2014"}),
}
# uname -m says aarch64 on Linux and arm64 on macOS; Docker's and Debian's names are amd64 and arm64.
MACHINE_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}

# The macOS versions venvs/serving is locked for, from the oldest that has a wheel of every serving
# package (scikit-learn 1.5.2's arm64 wheels need macOS 12, grpcio 1.85.3's x86-64 ones 11) to the
# newest. Each is a platform of its own: pip picks another scipy wheel from macOS 14 on.
MACOS_VERSIONS = {
    "arm64": ["12", "13", "14", "15", "26"],
    "x86_64": ["11", "12", "13", "14", "15", "26"],
}


class Unsupported(Exception):
    """What the kit cannot make on this machine, and what to do instead."""


def linux(machine):
    try:
        return LINUX[MACHINE_NAMES[machine]]
    except KeyError:
        raise Unsupported(f"the kit's image and serving wheels are made for x86-64 and arm64, not {machine}") from None


def manylinux_tags(machine):
    """The manylinux tags a Linux of NEWEST_GLIBC_MINOR accepts, best first, in pip's order. pip's
    --platform takes each tag as given (only manylinux2014 and manylinux2010 are widened), so they
    are all listed."""
    arch = linux(machine)
    tags = []
    for minor in range(NEWEST_GLIBC_MINOR, arch.oldest_glibc_minor - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch.machine}")
        if minor in arch.legacy_tags:
            tags.append(f"{arch.legacy_tags[minor]}_{arch.machine}")
    return tags


def macos_major(version):
    """'14.5' -> '14'; before macOS 11 the minor number was the release: '10.15.7' -> '10.15'."""
    parts = version.split(".")
    return ".".join(parts[:2]) if parts[0] == "10" else parts[0]


def macos_platform(version, machine):
    return f"macos-{macos_major(version)}-{machine}"


def serving_platforms():
    """Every platform requirements.lock holds a hash for, and tests/test_platforms.py checks."""
    names = [arch.platform for arch in LINUX.values()]
    for machine, versions in MACOS_VERSIONS.items():
        names += [macos_platform(version, machine) for version in versions]
    return names


def pip_platform_tags(platform_name):
    """The --platform tags of a serving platform. pip widens a macOS tag to the versions before it."""
    system, rest = platform_name.split("-", 1)
    if system == "linux":
        return manylinux_tags(rest)
    if system == "macos":
        version, machine = rest.split("-")
        major, _, minor = version.partition(".")
        return [f"macosx_{major}_{minor or 0}_{machine}"]
    raise Unsupported(f"no serving platform {platform_name}")


def pip_target(platform_name):
    """pip download's arguments for that platform's CPython 3.11 files (with --no-deps, or
    --only-binary :all:, as pip requires with --platform)."""
    args = []
    for tag in pip_platform_tags(platform_name):
        args += ["--platform", tag]
    return args + ["--python-version", PYTHON_VERSION, "--implementation", "cp"]


def image_platform(docker_architecture, machine):
    """The Linux the image is built for: the Docker engine's architecture (docker info), which on
    macOS is its virtual machine's, not the Mac's; uname -m where no engine answers."""
    return linux(docker_architecture or machine)


def local_serving(system, machine, macos_version=""):
    """The platform venvs/serving is made for on this host. On Linux from the image's wheelhouse, on
    macOS from the locked macOS wheels."""
    if system == "Linux":
        return linux(machine).platform
    if system == "Darwin":
        oldest = MACOS_VERSIONS.get(machine, [None])[0]
        if oldest is None:
            raise Unsupported(f"venvs/serving is made for macOS on arm64 and x86_64, not {machine}")
        if version_tuple(macos_version) < version_tuple(oldest):
            raise Unsupported(f"venvs/serving needs macOS {oldest} or later on {machine} (the oldest with a "
                              f"wheel of every serving package), this is {macos_version}")
        return macos_platform(macos_version, machine)
    raise Unsupported(f"venvs/serving is made on Linux and macOS, not {system}")


def version_tuple(version):
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def wheelhouse(platform_name):
    """The image's wheelhouse (Linux) is build/wheels, the Docker build context's only wheels
    (.dockerignore); a Mac's own, for venvs/serving there, is kept beside it."""
    return "build/wheels" if platform_name.startswith("linux-") else f"build/wheels-{platform_name}"


def strips_here(platform_name, system, machine):
    """GNU strip (image/strip_wheels.py) is run only on the Linux the wheels are for: another
    machine's ELF files are not sure to come out right, and macOS's strip is not GNU's."""
    return system == "Linux" and machine in MACHINE_NAMES and linux(machine).platform == platform_name


def prometheus_source(system, binaries, apt, root_or_sudo, image_pullable):
    """Where `make monitor` takes Prometheus, promtool and the blackbox exporter from, first of:
    binaries   the user's own on PATH (Homebrew, a release archive, Debian's installed before)
    apt        Debian's packages, where apt-get is there and root or `sudo -n` may run it
    docker     the official images, where the engine has or can pull them; not on macOS, whose
               containers do not share the Mac's 127.0.0.1, where the model's ports are
    image_pullable is called last, only if needed: a pull can take a minute."""
    if binaries:
        return "binaries"
    if apt and root_or_sudo:
        return "apt"
    if system != "Darwin" and image_pullable():
        return "docker"
    raise Unsupported(prometheus_hint(system))


def prometheus_hint(system):
    if system == "Darwin":
        how = "brew install prometheus blackbox_exporter"
    else:
        how = ("Debian or Ubuntu: sudo apt install prometheus prometheus-blackbox-exporter; elsewhere the "
               "release archives of prometheus and blackbox_exporter from https://prometheus.io/download/ "
               "with their binaries on PATH, or a Docker engine that can pull prom/prometheus")
    return (f"no Prometheus here (prometheus, promtool and a blackbox exporter on PATH): {how}; "
            "then run 'make monitor' again")


def python_hint(system):
    if system == "Darwin":
        how = "brew install python@3.11, or the macOS installer of Python 3.11 from https://www.python.org/downloads/"
    else:
        how = ("Debian or Ubuntu: sudo apt install python3.11 python3.11-venv, "
               "or pyenv install 3.11 (https://github.com/pyenv/pyenv)")
    return (f"Python 3.11 is needed: {how}; then run 'make setup' again "
            "(PYTHON=/path/to/python3.11 make setup if it is not on PATH as python3.11)")


# --- this machine's facts, for the shell scripts -------------------------------------------------

DOCKER_TIMEOUT = 10
PULL_TIMEOUT = 120


def docker(*args, timeout=DOCKER_TIMEOUT):
    if shutil.which("docker") is None:
        return None
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def images_present_or_pulled(images):
    return all(docker("image", "inspect", image) is not None
               or docker("pull", "-q", image, timeout=PULL_TIMEOUT) is not None for image in images)


def sudo_works():
    return shutil.which("sudo") is not None and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def main(args):
    system, machine = platform.system(), platform.machine()
    question = args[0] if args else ""
    if question == "image":
        arch = image_platform(docker("info", "--format", "{{.Architecture}}"), machine)
        print(getattr(arch, args[1]))
    elif question == "local-serving":
        print(local_serving(system, machine, platform.mac_ver()[0]))
    elif question == "wheelhouse":
        print(wheelhouse(args[1]))
    elif question == "pip-target":
        print(" ".join(pip_target(args[1])))
    elif question == "strip":
        return 0 if strips_here(args[1], system, machine) else 1
    elif question == "prometheus":
        binaries = all(shutil.which(tool) for tool in ("prometheus", "promtool")) and bool(
            shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter"))
        print(prometheus_source(system, binaries, shutil.which("apt-get") is not None,
                                os.geteuid() == 0 or sudo_works(), lambda: images_present_or_pulled(args[1:])))
    elif question == "python-hint":
        print(python_hint(system))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Unsupported as reason:
        print(reason, file=sys.stderr)
        sys.exit(1)
