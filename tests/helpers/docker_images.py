"""Base images for real-engine tests, made offline (this machine has no registry).

``busybox_image`` imports a root filesystem of one static busybox binary plus applet
symlinks (``docker import``), tagged ``orchestrator-test/busybox:1``, and reuses it when
the engine already has it. The binary comes from Debian's ``busybox-static`` package;
a dynamically linked busybox would not run in an image without a libc.
"""

from __future__ import annotations

import io
import shutil
import struct
import tarfile
import tempfile
from pathlib import Path

from orchestrator.engine.dockerpy import Engine

BUSYBOX_REPOSITORY = "orchestrator-test/busybox"
BUSYBOX_TAG = "1"
BUSYBOX_REF = f"{BUSYBOX_REPOSITORY}:{BUSYBOX_TAG}"
APPLETS = (
    "sh", "cat", "chmod", "cp", "echo", "env", "false", "grep", "head", "id", "ln", "ls", "mkdir", "mv",
    "printf", "rm", "sed", "sleep", "stat", "tail", "test", "touch", "true", "wc",
)  # fmt: skip
_PT_INTERP = 3


def find_static_busybox() -> Path | None:
    """A statically linked busybox on this machine (``apt-get install busybox-static``), or None."""
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).is_file() and is_static_elf(Path(candidate)):
            return Path(candidate)
    return None


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF with no program interpreter (no dynamic loader)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = (struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum))
    return _PT_INTERP not in types


def write_busybox_rootfs(busybox: Path, tar_path: Path) -> None:
    """A reproducible root filesystem: /bin/busybox, /bin/<applet> symlinks, /tmp, /src."""
    with tarfile.open(tar_path, "w") as archive:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("src", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            archive.addfile(info)
        data = busybox.read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        archive.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
            archive.addfile(link)


def busybox_image(engine: Engine) -> str:
    """The id of ``orchestrator-test/busybox:1``, importing it first if the engine lacks it.

    Raises LookupError when no static busybox is installed here.
    """
    existing = engine.image_id(BUSYBOX_REF)
    if existing is not None:
        return existing
    busybox = find_static_busybox()
    if busybox is None:
        raise LookupError("no static busybox on this machine: apt-get install busybox-static")
    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        write_busybox_rootfs(busybox, tar_path)
        return engine.import_rootfs(tar_path, BUSYBOX_REPOSITORY, BUSYBOX_TAG, changes=["ENV PATH=/bin"])
