"""Reduces a debootstrapped Debian bookworm root file system to what a container of the model
server uses: Python 3.11 with its standard library and the shared libraries those load, the shell
(dash) and coreutils (the tests and the Dockerfile run `sh -c`, `kill`, `tr`, `mkdir`, `chown`).
Every other package's files go (apt, dpkg, perl-base, util-linux, login, passwd, bash, tar, ...),
and dpkg's status file then lists only the packages that are really there, for image scanners.

Run by image/base_image.sh inside the root file system with its own Python:
    chroot ROOTFS /usr/bin/python3.11 - < image/slim_rootfs.py
"""
import os
import sys

KEEP = {
    # The interpreter, its standard library and distutils (seldon-core imports distutils.util).
    "python3", "python3-minimal", "python3.11", "python3.11-minimal", "libpython3-stdlib",
    "libpython3.11-minimal", "libpython3.11-stdlib", "python3-distutils", "python3-lib2to3",
    "media-types", "tzdata", "readline-common",
    # What the interpreter and the extension modules of its standard library link to (readelf -d):
    # ssl/hashlib, sqlite3 (the feedback log), ctypes, bz2, lzma, zlib, uuid, pyexpat, crypt.
    # libstdc++ and libgcc for the wheels' C++ extensions (grpc, sklearn). Not curses or readline:
    # nothing served draws on a terminal, and an interactive python3 works without line editing.
    "libc6", "libc-bin", "gcc-12-base", "libgcc-s1", "libstdc++6", "zlib1g", "libbz2-1.0", "liblzma5",
    "libexpat1", "libffi8", "libssl3", "libsqlite3-0", "libuuid1", "libcrypt1",
    # sh and the basic commands, with their libraries (libgmp only served expr and factor).
    "dash", "coreutils", "libacl1", "libattr1", "libselinux1", "libpcre2-8-0",
    # /etc/os-release and the like; the users and groups.
    "base-files", "base-passwd", "usr-is-merged",
}
# Files of kept packages that go too. nis (deprecated, NIS/YP lookups) and _dbm (dbm.ndbm; dbm falls
# back to dbm.dumb) would need Kerberos, libtirpc and Berkeley DB, 3.7 MB, for nothing served here;
# curses and readline, ncurses. Of the standard library, parts neither the server (by the trace,
# image/serving_modules.txt) nor pip in the build stage imports: CPython's test modules, the
# pure-Python twins of _decimal and _io, test and mail tools, turtle. Of glibc, its vector math
# library (linked by nothing here) and
# locale and time-zone compilers. Of coreutils, the commands a shell in the container is used for
# (4.4 MB of the rest go).
UNSERVED_STDLIB = (
    "nis.", "_dbm.", "readline.", "_curses", "curses/", "_testcapi.", "_testclinic.", "_testbuffer.",
    "_testinternalcapi.", "_testmultiphase.", "_testimportmultiple.", "_xxtestfuzz.", "_xxsubinterpreters.",
    "xxlimited", "_ctypes_test.", "audioop.", "_pydecimal.py", "_pyio.py", "unittest/", "doctest.py",
    "pickletools.py", "turtle.py", "mailbox.py", "imaplib.py", "smtplib.py", "nntplib.py")


def unserved_stdlib(path):
    rel = path.split("/python3.11/", 1)[-1].removeprefix("lib-dynload/")
    return any(rel.startswith(name) or rel == name.rstrip("/") for name in UNSERVED_STDLIB)


DROP = {
    "libpython3.11-stdlib": unserved_stdlib,
    "libpython3.11-minimal": unserved_stdlib,
    "libc6": lambda path: "/libmvec." in path,
    "libc-bin": lambda path: path.rsplit("/", 1)[-1] in {"localedef", "zic", "iconvconfig"},
    "coreutils": lambda path: path.startswith(("/bin/", "/usr/bin/")) and path.rsplit("/", 1)[-1] not in {
        "[", "cat", "chmod", "chown", "cp", "date", "df", "du", "echo", "env", "false", "head", "id", "ln",
        "ls", "mkdir", "mktemp", "mv", "nproc", "printf", "pwd", "readlink", "rm", "rmdir", "sleep",
        "sort", "stat", "tail", "tee", "test", "touch", "tr", "true", "uname", "wc"},
}
STATUS = "/var/lib/dpkg/status"
INFO = "/var/lib/dpkg/info"


def canonical(path):
    """The path with its directories' symlinks resolved (/bin/sh -> /usr/bin/sh), not its own."""
    head, tail = os.path.split(path)
    return os.path.join(os.path.realpath(head), tail)


def package_files(package):
    for name in (f"{package}.list", f"{package}:amd64.list", f"{package}:arm64.list"):
        if os.path.exists(os.path.join(INFO, name)):
            with open(os.path.join(INFO, name)) as f:
                return [line.rstrip("\n") for line in f if line.strip() not in ("", "/.")]
    sys.exit(f"slim_rootfs: no file list for {package}")


def main():
    with open(STATUS) as f:
        paragraphs = [p for p in f.read().split("\n\n") if p.strip()]
    installed = {p.split("\n", 1)[0].removeprefix("Package: "): p for p in paragraphs}
    missing = KEEP - set(installed)
    if missing:
        sys.exit(f"slim_rootfs: packages to keep are not installed: {sorted(missing)}")
    def dropped(package, path):
        return package not in KEEP or (package in DROP and DROP[package](path))

    kept = {canonical(path) for package in KEEP for path in package_files(package) if not dropped(package, path)}
    dirs, removed, size = set(), 0, 0
    for package in sorted(set(installed) - KEEP) + sorted(DROP):
        for path in package_files(package):
            real = canonical(path)
            if real in kept or not dropped(package, path):
                continue
            if os.path.isdir(real) and not os.path.islink(real):
                dirs.add(real)
            elif os.path.lexists(real):
                size += os.lstat(real).st_size
                os.remove(real)
                removed += 1
    for directory in sorted(dirs, key=len, reverse=True):
        if not os.listdir(directory):
            os.rmdir(directory)
    # Symlinks left pointing at removed files (update-alternatives links, /usr/bin/awk and the like).
    for top in ("/etc", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/share"):
        for root, subdirs, files in os.walk(top):
            for name in files + subdirs:
                path = os.path.join(root, name)
                if os.path.islink(path) and not os.path.exists(path):
                    os.remove(path)
    with open(STATUS, "w") as f:
        f.write("\n\n".join(installed[p] for p in sorted(KEEP)) + "\n\n")
    print(f"[slim] removed {removed} files ({size / 1e6:.1f} MB) of "
          f"{len(installed) - len(KEEP)} packages; kept {len(KEEP)}", file=sys.stderr)


main()
