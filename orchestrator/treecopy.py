"""A checkout's tree into a builder container and back, as tar streams.

A builder container gets a *copy* of the checkout instead of a bind mount: whatever
it writes, the host's ``.git`` is never touched, so nothing it plants there (say
``core.fsmonitor`` in ``.git/config``, or a hook) can later run on the host.

``pack`` writes the work tree and a copy of its ``.git`` (so ``git describe`` works
inside) as one tar under ``src/``, the shape ``put_archive('/')`` expects, with every
entry owned by the uid:gid the container runs as and symlinks stored as symlinks.

``replace_tree`` brings back what ``get_archive('/src')`` returned. That tar comes
from a sandbox, so it is hostile input:

- names must lie under ``src/`` and be plain (no absolute names, no ``..``, no empty
  components); anything else refuses the whole tar;
- nothing under a ``.git`` directory (the copy, or a nested repository the container
  made) comes back: the host keeps its own ``.git``, untouched;
- regular files come back without setuid, setgid or sticky bits and never group- or
  world-writable; directories likewise;
- symlinks are recreated as symlinks, never followed: whether one may be *used* (as an
  output, a staging target) is decided later, by ``orchestrator.confined``;
- a hard link becomes a hard link to a regular file brought back before it (never a
  copy: a thousand links to one file must not cost the host a thousand files), or is
  skipped; devices, FIFOs and sockets are skipped; each skipped entry is named in the log;
- runs of zero bytes become holes: a sparse file costs the host no more disk than it
  cost the container, however long the engine streams its zeros;
- an entry below a symlink or a file (``bin -> /etc`` then ``bin/passwd``) refuses the
  tar: every parent is opened with O_NOFOLLOW, relative to the one before.

``check`` is called before each chunk of the stream is read: it raises to stop the
copy (Ctrl-C, the artifact's deadline), which then leaves the tree as it was.

Files the container deleted are gone on the host too: the tar is extracted into a
fresh sibling directory ``.tmp~<name>~*``, the host's ``.git`` is moved into it, and
the two trees are swapped by renames. A run killed midway leaves either the old tree,
the new one, or a checkout without ``.git``; ``gitcache`` removes ``.tmp~<name>~*``
leftovers and re-creates such a checkout from the mirror before the next build.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from orchestrator.confined import UnsafePath, opened_dir
from orchestrator.errors import BuildError

Log = Callable[[str], None]
Check = Callable[[], None]
_ROOT = "src"
_BLOCK = 1 << 20
_ZEROS = bytes(_BLOCK)
_KINDS = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


class HostileArchive(BuildError):
    """The tar of a container's /src holds an entry that must not reach the host."""

    def __init__(self, entry: str, why: str) -> None:
        super().__init__(
            f"the builder container's /src holds {entry!r}, which {why}; nothing was copied back",
            hint="the build wrote something that could reach outside the checkout; fix the build command or image",
        )
        self.entry, self.why = entry, why


@dataclass(frozen=True, slots=True, kw_only=True)
class Brought:
    """What ``replace_tree`` did: files brought back, and entries skipped (with why)."""

    files: int
    skipped: tuple[str, ...]


class CopyFailed(BuildError):
    """Copying a tree into or out of a container failed on the host (unreadable file, full disk)."""


def send(container: Any, tree: Path) -> None:
    """``tree`` (work tree and a copy of ``.git``) into the container's /src, owned by our uid:gid,
    which is the user the container runs as."""
    with tempfile.TemporaryFile() as tar:
        try:
            pack(tree, tar, uid=os.getuid(), gid=os.getgid())
        except OSError as e:
            raise CopyFailed(f"copying {tree} into a builder container failed: {e}") from e
        tar.seek(0)
        container.put_archive("/", tar)


def bring_back(container: Any, tree: Path, *, log: Log, check: Check | None = None) -> Brought:
    """The container's /src back into ``tree``: ``replace_tree`` over ``get_archive('/src')``.

    ``check`` may raise to stop the copy; the stream is then closed, so the engine stops
    sending it."""
    chunks, _ = container.get_archive("/src")
    try:
        return replace_tree(chunks, tree, log=log, check=check)
    except OSError as e:
        raise CopyFailed(f"copying /src of a builder container back into {tree} failed: {e}",
                         hint="check free space and permissions of the workspace") from e
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def pack(tree: Path, into: IO[bytes], *, uid: int, gid: int) -> None:
    """Write ``tree`` (work tree and ``.git``) as a tar of ``src/...`` to ``into``."""
    with tarfile.open(fileobj=into, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(path: Path, name: str) -> None:
            info = tar.gettarinfo(str(path), arcname=name)
            if info is None or info.type not in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
                return  # sockets, FIFOs, devices: no build needs them from the host
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            if info.isreg():
                with path.open("rb") as data:
                    tar.addfile(info, data)
                return
            tar.addfile(info)
            if info.isdir():
                for child in sorted(os.listdir(path)):
                    add(path / child, f"{name}/{child}")

        add(tree, _ROOT)


def replace_tree(chunks: Iterable[bytes], tree: Path, *, log: Log, check: Check | None = None) -> Brought:
    """Make ``tree`` (but its ``.git``) exactly the ``src/`` tar in ``chunks``; see the module docstring."""
    holder = Path(tempfile.mkdtemp(prefix=f".tmp~{tree.name}~", dir=tree.parent))
    new = holder / "new"
    try:
        new.mkdir(mode=0o700)
        brought = _Extraction(new, log).run(chunks, check)
        git = tree / ".git"
        moved = os.path.lexists(git)
        if moved:
            os.rename(git, new / ".git")
        try:
            os.rename(tree, holder / "old")
        except BaseException:
            if moved:
                os.rename(new / ".git", git)
            raise
        os.rename(new, tree)
    finally:
        shutil.rmtree(holder, ignore_errors=True)
    return brought


class _Extraction:
    """One pass over the tar stream into the empty directory ``root``."""

    def __init__(self, root: Path, log: Log) -> None:
        self.root, self.log = root, log
        self.regular: set[tuple[str, ...]] = set()
        self.dirs: dict[tuple[str, ...], tuple[int, int]] = {}  # parts -> (mode, mtime)
        self.skipped: list[str] = []

    def run(self, chunks: Iterable[bytes], check: Check | None = None) -> Brought:
        stream = io.BufferedReader(_ChunkReader(iter(chunks), check), buffer_size=_BLOCK)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                first = True
                for member in tar:
                    parts = self.parts(member.name)
                    if first and (parts != () or not member.isdir()):
                        raise HostileArchive(member.name, f"should have been the directory {_ROOT}")
                    first = False
                    try:
                        self.one(tar, member, parts)
                    except UnsafePath as e:
                        raise HostileArchive(member.name, f"lies below {_ROOT}/{e.relative}, which {e.why}") from e
                if first:
                    raise HostileArchive(_ROOT, "is missing from the archive")
        except tarfile.TarError as e:
            raise HostileArchive(_ROOT, f"is not a readable tar ({e})") from e
        for parts, (mode, mtime) in sorted(self.dirs.items(), key=lambda item: -len(item[0])):
            with opened_dir(self.root, parts) as fd:
                os.fchmod(fd, _safe_mode(mode, directory=True))
                os.utime(fd, (mtime, mtime))
        return Brought(files=len(self.regular), skipped=tuple(self.skipped))

    def parts(self, name: str) -> tuple[str, ...]:
        components = name.split("/")
        if components[0] != _ROOT or any(part in ("", ".", "..") for part in components):
            raise HostileArchive(name, f"is not a plain path under {_ROOT}/")
        return tuple(components[1:])

    def one(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        if ".git" in parts:
            return  # the container's copy of .git (or a nested one) never reaches the host
        if not parts and not member.isdir():
            raise HostileArchive(member.name, f"should have been the directory {_ROOT}")
        if member.isdir():
            if parts:
                with opened_dir(self.root, parts[:-1], create=True) as parent:
                    self.make_dir(parent, member.name, parts[-1])
            self.dirs[parts] = (member.mode, int(member.mtime))
        elif member.isreg():
            data = tar.extractfile(member)
            assert data is not None  # a regular member always has data
            self.write(parts, member.name, _blocks(data), member.mode, int(member.mtime))
        elif member.issym():
            with opened_dir(self.root, parts[:-1], create=True) as parent:
                self.clear(parent, member.name, parts[-1])
                os.symlink(member.linkname, parts[-1], dir_fd=parent)
                os.utime(parts[-1], (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
        elif member.islnk():
            self.link(parts, member)
        else:
            self.skip(member.name, _KINDS.get(member.type, "not a file, directory or symlink"))

    def make_dir(self, parent: int, entry: str, name: str) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            if not stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise HostileArchive(entry, "is listed as a directory after a file or symlink of that name") from None

    def clear(self, parent: int, entry: str, name: str) -> None:
        """Remove an earlier entry of the same name (a tar may list a path twice)."""
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            raise HostileArchive(entry, "is listed as a file after a directory of that name")
        os.unlink(name, dir_fd=parent)
        self.regular.discard(self.parts(entry))

    def write(self, parts: tuple[str, ...], entry: str, blocks: Iterator[bytes], mode: int, mtime: int) -> None:
        with opened_dir(self.root, parts[:-1], create=True) as parent:
            self.clear(parent, entry, parts[-1])
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(parts[-1], flags, 0o600, dir_fd=parent)
            try:
                size = 0
                for block in blocks:
                    size += len(block)
                    if block == (_ZEROS if len(block) == _BLOCK else bytes(len(block))):
                        os.lseek(fd, len(block), os.SEEK_CUR)  # a hole, not zeros on the host's disk
                        continue
                    view = memoryview(block)
                    while view:
                        view = view[os.write(fd, view) :]
                os.ftruncate(fd, size)  # a hole at the end has no bytes to give the file its size
                os.fchmod(fd, _safe_mode(mode, directory=False))
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
        self.regular.add(parts)

    def link(self, parts: tuple[str, ...], member: tarfile.TarInfo) -> None:
        """A hard link to a regular file brought back earlier (one we wrote), or nothing."""
        try:
            target = self.parts(member.linkname)
        except HostileArchive:
            target = None
        if target == parts:
            return  # a link to itself: the file is there already
        if target is None or target not in self.regular:
            self.skip(member.name, f"a hard link to {member.linkname!r}, which was not brought back")
            return
        with opened_dir(self.root, target[:-1]) as source, opened_dir(self.root, parts[:-1], create=True) as parent:
            self.clear(parent, member.name, parts[-1])
            os.link(target[-1], parts[-1], src_dir_fd=source, dst_dir_fd=parent, follow_symlinks=False)
        self.regular.add(parts)

    def skip(self, entry: str, why: str) -> None:
        self.skipped.append(f"{entry} ({why})")
        self.log(f"not copied back from the container: {entry}: {why}")


def _safe_mode(mode: int, *, directory: bool) -> int:
    """No setuid, setgid or sticky bit, nothing group- or world-writable; the owner may
    always read and write (and enter directories), so the host can publish and clean up."""
    return (stat.S_IMODE(mode) & 0o755) | (0o700 if directory else 0o600)


def _blocks(data: IO[bytes]) -> Iterator[bytes]:
    while block := data.read(_BLOCK):
        yield block


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (docker-py's archive stream)."""

    def __init__(self, chunks: Iterator[bytes], check: Check | None = None) -> None:
        super().__init__()
        self._chunks = chunks
        self._check = check
        self._chunk = b""
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._position >= len(self._chunk):
            if self._check is not None:
                self._check()
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk, self._position = chunk, 0
        size = min(len(buffer), len(self._chunk) - self._position)
        buffer[:size] = self._chunk[self._position : self._position + size]
        self._position += size
        return size
