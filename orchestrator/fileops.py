"""Files on disk, written so that a reader never sees half of one: the one home of
atomic writes and copies, hashing, and the check that published files are intact.

Every writer of the orchestrator goes through here, so there is one durability
policy: write to a temporary name in the same directory, then rename.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from orchestrator.outputs import FileRecord


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_damaged(release_dir: Path, files: Iterable[FileRecord]) -> str | None:
    """The path of the first recorded file that is missing or changed, or None."""
    for record in files:
        published = release_dir / record.path
        if not published.is_file() or sha256_file(published) != record.sha256:
            return record.path
    return None


def _temp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}"


def copy_atomic(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` through a temp name in the same directory, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(dest)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# Manifests, config files and records are kilobytes; 16 MiB leaves room for a
# 20,000-artifact manifest and still refuses /dev/zero or a runaway file at once.
MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputFileError(OSError):
    """An input file that is not a regular file, or is larger than the limit."""


def read_limited(path: Path, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, refusing anything else before reading.

    A FIFO, a device (``/dev/zero``), a directory or a file over ``limit`` bytes raises
    ``InputFileError`` (an OSError, with ``strerror`` saying why); opening never blocks
    (O_NONBLOCK), so a FIFO with no writer is refused instead of waited for.
    Other OSErrors (missing, unreadable) propagate unchanged.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise InputFileError(errno.EINVAL, kind, str(path))
        if info.st_size > limit:
            raise InputFileError(errno.EFBIG, f"larger than {limit // (1024 * 1024)} MiB", str(path))
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:  # grew while we read
                raise InputFileError(errno.EFBIG, f"larger than {limit // (1024 * 1024)} MiB", str(path))
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
