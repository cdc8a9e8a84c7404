"""Files on disk, written so that a reader never sees half of one: the one home of
atomic writes and copies, hashing, and reading inputs with limits. (Whether a
published file is intact is ``integrity.damage``.)

Every writer of the orchestrator goes through here, so there is one durability
policy: write to a temporary name in the same directory, fsync, rename, fsync the
directory (``replace_file``; ``write_atomic`` is it with the one error message, and
``confined`` puts the same steps together on directory descriptors).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from orchestrator.errors import OrchestratorError


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)-[0-9a-f]+$")


def _temp_name(path: Path) -> Path:
    # Random, not the thread id: a dead run's leftover with our pid must never collide.
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"


class WriteError(OrchestratorError):
    """A file could not be written; its old contents (if any) are intact."""


class NoSpaceError(WriteError):
    """The device is full (ENOSPC) or the user's quota is used up (EDQUOT)."""


def write_error(path: Path, error: OSError) -> WriteError:
    """The one message for a failed write of ``path``: what, where and what to do."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpaceError(f"cannot write {path}: no space left on device",
                            hint=f"free space on the file system that holds {path.parent}, then run again")
    return WriteError(f"cannot write {path}: {error.strerror or error}",
                      hint=f"check that {path.parent} is a writable directory")


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old bytes or all
    of the new ones, whatever is killed and even after a power cut (``replace_file``).
    Any OSError (a full disk above all) raises WriteError naming ``path``.
    """
    try:
        replace_file(path, data, mode=mode)
    except OSError as e:
        raise write_error(path, e) from e


def replace_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """The one durability policy of every writer, raising OSError as it comes.

    A temp file in the same directory (a random name, created O_EXCL|O_NOFOLLOW: a link
    planted at a predictable name is never written through), written, chmod'ed to
    ``mode`` and fsync'ed (``write_all``, ``settle``), renamed over ``path``, then the
    directory fsync'ed so the rename itself survives a crash (``rename_durably``). The
    temp file is removed on any failure.
    """
    tmp = _temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            write_all(fd, (data,))
            os.fchmod(fd, mode)  # explicit: the caller's umask must not decide a release's modes
            settle(fd)
        finally:
            os.close(fd)
        rename_durably(tmp.name, path.name, directory=path.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_all(fd: int, chunks: Iterable[bytes]) -> None:
    """Write every byte of ``chunks`` to ``fd`` (os.write may write less than asked)."""
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


def settle(fd: int) -> None:
    """The file's bytes reach the disk before any name points at them."""
    os.fsync(fd)


def rename_durably(temp: str, name: str, *, directory: Path | None = None, dir_fd: int | None = None) -> None:
    """Rename ``temp`` over ``name`` in one directory (given by path or by an open
    descriptor), then fsync that directory so the rename survives a crash."""
    if dir_fd is not None:
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
        return
    assert directory is not None
    os.replace(directory / temp, directory / name)
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` (a rename, a removal) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_files(root: Path, relative: Iterable[str]) -> None:
    """fsync each file ``root/<path>`` and its directory: the bytes a record is about
    to vouch for reach the disk before the record does. Missing files are skipped
    (the record's own checks report them)."""
    directories: set[Path] = set()
    for name in relative:
        path = root / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        directories.add(path.parent)
    for directory in sorted(directories):
        fsync_directory(directory)


# Manifests, config files and records are kilobytes; 16 MiB leaves room for a
# 20,000-artifact manifest and still refuses /dev/zero or a runaway file at once.
MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputFileError(OSError):
    """An input file that is not a regular file, or is larger than the limit."""


def read_limited(path: Path, *, limit: int = MAX_INPUT_BYTES, follow: bool = True) -> bytes:
    """The bytes of the regular file ``path``, refusing anything else before reading.

    A FIFO, a device (``/dev/zero``), a directory or a file over ``limit`` bytes raises
    ``InputFileError`` (an OSError, with ``strerror`` saying why, errno EINVAL or EFBIG);
    opening never blocks (O_NONBLOCK), so a FIFO with no writer is refused instead of
    waited for. ``follow=False`` (files in a cache or a repository, which others may
    write): a symlink is refused too (ELOOP), never followed. Other OSErrors (missing,
    unreadable) propagate unchanged.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise InputFileError(errno.EINVAL, kind, str(path))
        too_big = f"larger than {limit // (1024 * 1024)} MiB" if limit >= 1 << 20 else f"larger than {limit} bytes"
        if info.st_size > limit:
            raise InputFileError(errno.EFBIG, too_big, str(path))
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1)):
            total += len(chunk)
            if total > limit:  # grew while we read
                raise InputFileError(errno.EFBIG, too_big, str(path))
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
