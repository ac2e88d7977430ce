"""Strips the symbol tables from the shared objects inside the wheels of a wheelhouse, in place
(`strip --strip-unneeded`, GNU binutils): about 25 MB less in the image, nothing lost at run time
(the dynamic symbols stay; tracebacks of Python code are unaffected).

    python3 image/strip_wheels.py build/wheels

Each wheel's RECORD gets the new hashes and sizes. A library that `strip` would leave with LOAD
segments no longer aligned to their page offsets (it happens to some that auditwheel rewrote with
patchelf, e.g. scipy's OpenBLAS: "ELF load command address/offset not page-aligned") is left as it
was. Idempotent: an object already stripped is not rewritten.
"""
import base64
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def loads_aligned(path):
    """True if every PT_LOAD segment of this ELF64 file has offset congruent to address modulo its
    alignment, as the dynamic loader requires."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _, offset, vaddr, _, _, _, align = struct.unpack_from("<IIQQQQQQ", table, i * phentsize)
        if p_type == 1 and align > 1 and (offset - vaddr) % align:
            return False
    return True


def is_shared_object(name):
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".so") or ".so." in base


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def strip_wheel(wheel, work):
    with zipfile.ZipFile(wheel) as zin:
        infos = zin.infolist()
        contents = {info.filename: zin.read(info) for info in infos}
    changed, kept, saved = {}, [], 0
    for name, data in contents.items():
        if not is_shared_object(name) or not data.startswith(b"\x7fELF"):
            continue
        path = os.path.join(work, "object")
        Path(path).write_bytes(data)
        subprocess.run(["strip", "--strip-unneeded", path], check=True)
        stripped = Path(path).read_bytes()
        if len(stripped) >= len(data):
            continue
        if not loads_aligned(path):
            kept.append(name.rsplit("/", 1)[-1])
            continue
        changed[name] = stripped
        saved += len(data) - len(stripped)
    if not changed:
        return 0, kept
    record = next(name for name in contents if name.endswith(".dist-info/RECORD"))
    lines = []
    for line in contents[record].decode().splitlines():
        name = line.rsplit(",", 2)[0]
        lines.append(record_line(name, changed[name]) if name in changed else line)
    changed[record] = ("\n".join(lines) + "\n").encode()
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in infos:  # same order, names and timestamps
            zout.writestr(info, changed.get(info.filename, contents[info.filename]),
                          compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, wheel)
    return saved, kept


def main(wheels):
    if shutil.which("strip") is None:
        sys.exit("strip_wheels: no `strip` (GNU binutils) on this machine")
    total = 0
    with tempfile.TemporaryDirectory() as work:
        for wheel in sorted(Path(wheels).glob("*.whl")):
            saved, kept = strip_wheel(wheel, work)
            total += saved
            if saved or kept:
                note = f" (left as they were: {', '.join(kept)})" if kept else ""
                print(f"[wheelhouse] stripped {wheel.name.split('-')[0]}: {saved / 1e6:.1f} MB{note}",
                      file=sys.stderr)
    print(f"[wheelhouse] stripping saved {total / 1e6:.1f} MB (uncompressed)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
