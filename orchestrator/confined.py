"""Files under a root directory that must stay under it: the one place that walks
paths without following symlinks.

A checkout holds repository content and whatever a builder container left, and a
release directory (``dist/<release>/``) is writable by anyone who can write the
workspace: neither may steer a read or a write of ours somewhere else. So every
output read from a checkout, every staged input written into one, and every file
published into a release goes through here:

- where a symlink is allowed (an output or a staging parent that points elsewhere
  *inside* the checkout), the path is resolved first and refused when its real path
  leaves the root or enters a ``.git`` directory, which host git trusts (``resolve_inside``);
- the resolved path is then opened one component at a time, each relative to the
  directory before it, with ``O_NOFOLLOW``: a component that is (or has just become)
  a symlink fails the operation instead of being followed;
- files are written to a temporary name in their final directory and renamed over the
  destination, which replaces a symlink found there instead of writing through it.

The root itself is opened normally: it is where the caller was told to work.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator import fileops
from orchestrator.errors import BuildError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_BLOCK = 1 << 20


class UnsafePath(BuildError):
    """A path that leaves its root, or runs through a symlink or a non-directory.

    ``relative`` is the path as asked for (relative to ``root``), ``why`` says what was
    found; callers turn it into their own error with the artifact's name.
    """

    def __init__(self, root: Path, relative: str, why: str) -> None:
        super().__init__(f"{relative}: {why}")
        self.root, self.relative, self.why = root, relative, why


@dataclass(frozen=True, slots=True, kw_only=True)
class Copied:
    """What ``copy_file`` wrote: the content's sha256, its size and the mode it got."""

    sha256: str
    size: int
    mode: int


def parts_of(relative: str | PurePosixPath) -> tuple[str, ...]:
    """The components of a relative path; refuses absolute paths, ``..`` and empty names."""
    text = str(relative)
    parts = tuple(part for part in text.split("/") if part not in ("", "."))
    if text.startswith("/") or not parts or ".." in parts:
        raise ValueError(f"not a plain relative path: {text!r}")
    return parts


def resolve_inside(root: Path, relative: str, *, where: str) -> PurePosixPath:
    """``relative`` with every symlink in it resolved, relative to the real ``root``.

    Raises ``UnsafePath`` naming where it points when the real path leaves ``root``
    (``where`` names the root in that message: "the checkout"), or leads into a ``.git``
    directory. Components that do not exist yet are kept as they are.
    """
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, relative))
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise UnsafePath(root, relative, f"resolves to {real}, outside {where} {root}")
    inside = PurePosixPath(os.path.relpath(real, real_root))
    # A checkout's .git is the host's, and host git trusts it: a committed `vendor -> .git`
    # must not make staging write .git/config (or an output read it).
    if ".git" in inside.parts:
        raise UnsafePath(root, relative, f"resolves to {inside}, inside a .git directory (host git trusts it)")
    return inside


@contextlib.contextmanager
def opened_dir(root: Path, parts: tuple[str, ...], *, create: bool = False) -> Iterator[int]:
    """A descriptor of directory ``root/parts...`` reached without following symlinks.

    With ``create``, missing directories are made (0o755). A component that is a
    symlink, or not a directory, raises ``UnsafePath``.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, part in enumerate(parts):
            child = _step(fd, part, create=create, root=root, shown="/".join(parts[: depth + 1]))
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _step(parent: int, name: str, *, create: bool, root: Path, shown: str) -> int:
    """Open directory ``name`` below ``parent``, never through a symlink."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):  # made meanwhile: the open below decides
            os.mkdir(name, 0o755, dir_fd=parent)
        return _step(parent, name, create=False, root=root, shown=shown)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=parent)
            raise UnsafePath(root, shown, f"is a symlink (-> {target}); refusing to go through it") from e
        raise UnsafePath(root, shown, "is not a directory") from e


@contextlib.contextmanager
def opened_file(root: Path, relative: str | PurePosixPath) -> Iterator[tuple[int, os.stat_result]]:
    """A read descriptor of the regular file ``root/relative`` and its fstat, no symlink followed."""
    parts = parts_of(relative)
    with opened_dir(root, parts[:-1]) as parent:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePath(root, str(relative), "is a symlink; refusing to follow it") from e
            raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(root, str(relative), "is not a regular file")
        yield fd, info
    finally:
        os.close(fd)


def published_mode(source_mode: int) -> int:
    """0o755 when the source had any execute bit, else 0o644: no setuid, setgid, sticky
    bit, and nothing group- or world-writable ever lands in a release or a checkout."""
    return 0o755 if source_mode & 0o111 else 0o644


def copy_file(source_root: Path, source: str | PurePosixPath, dest_root: Path, dest: str | PurePosixPath) -> Copied:
    """Copy regular file ``source_root/source`` to ``dest_root/dest`` without following
    any symlink on either side; the destination appears whole, by rename, with mode
    ``published_mode`` and the source's mtime. Missing destination directories are made.
    """
    with opened_file(source_root, source) as (fd, info):
        mode = published_mode(info.st_mode)

        def chunks() -> Iterator[bytes]:
            while block := os.read(fd, _BLOCK):
                yield block

        return write_file(dest_root, dest, chunks(), mode=mode, mtime_ns=info.st_mtime_ns)


def write_file(
    root: Path, relative: str | PurePosixPath, chunks: Iterator[bytes], *, mode: int, mtime_ns: int | None = None
) -> Copied:
    """Write ``chunks`` to ``root/relative`` through a temporary name and a rename.

    Parent directories are reached (and made) without following symlinks; a symlink at
    the destination itself is replaced, never written through. File and directory are
    synced, so after a crash the name holds the whole new file or the old one.
    """
    parts = parts_of(relative)
    name = parts[-1]
    temp = f".{name}.tmp-{os.getpid()}-{threading.get_ident()}"
    digest, size = hashlib.sha256(), 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with opened_dir(root, parts[:-1], create=True) as parent:
        try:
            fd = os.open(temp, flags, 0o600, dir_fd=parent)
        except FileExistsError:  # left by a killed run whose pid was ours, or planted: never followed
            os.unlink(temp, dir_fd=parent)
            fd = os.open(temp, flags, 0o600, dir_fd=parent)
        try:
            try:
                for block in chunks:
                    digest.update(block)
                    size += len(block)
                    fileops.write_all(fd, (block,))
                os.fchmod(fd, mode)
                if mtime_ns is not None:
                    os.utime(fd, ns=(mtime_ns, mtime_ns))
                fileops.settle(fd)
            finally:
                os.close(fd)
            try:
                fileops.rename_durably(temp, name, dir_fd=parent)
            except IsADirectoryError as e:
                raise UnsafePath(root, str(relative), "is a directory; cannot put a file there") from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=parent)
    return Copied(sha256=digest.hexdigest(), size=size, mode=mode)
