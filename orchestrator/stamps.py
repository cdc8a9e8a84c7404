"""Stamps: how a warm run learns, without starting git, that a directory is exactly as
the orchestrator left it.

A stamp is the digest of the stat data of every entry of a tree (type and permission
bits, size, mtime_ns, ctime_ns, inode, owner), taken right after the orchestrator made
the tree right, the way git's index remembers a checkout. Any write to a file changes
its ctime, and nothing short of root (or changing the clock) sets a ctime back, so a
file rewritten behind our back with the same size and its mtime restored still differs.

What stat data cannot tell: a file written in the same clock tick as the stamp was
taken ("racily clean", in git's words). Those files' contents are hashed into the stamp
and hashed again on every check, so they are never trusted on stat data alone.

A stamp sits in an untrusted place (``.build/``), so it is signed (HMAC-SHA256) with a
per-user key kept mode 0600 in the mirror cache: a stamp that anyone else wrote (a
container, another user, a workspace copied from elsewhere) fails the signature and is
ignored. Nothing here raises for a bad stamp or key: it is not trusted, and the caller
falls back to asking git.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import operator
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator import procs
from orchestrator.fileops import read_limited

FORMAT = 2  # 2: the digest is of the entries' repr, not of text lines
KEY_NAME = ".stamp-key"
KEY_BYTES = 32
MAX_STAMP_BYTES = 1024 * 1024
MAX_RACY_BYTES = 64 * 1024 * 1024  # past this, hashing racy files costs more than asking git

_KEYS: dict[Path, bytes] = {}


def key(cache_dir: Path) -> bytes | None:
    """The signing key kept in ``cache_dir`` (made on first use), or None when there is
    no usable one: it must be a regular file of ours, readable by us alone."""
    path = cache_dir.absolute() / KEY_NAME
    if path in _KEYS:
        return _KEYS[path]
    found = _read_key(path)
    if found is None:
        found = _make_key(path)
    if found is not None:
        _KEYS[path] = found
    return found


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077
                or info.st_size != KEY_BYTES):
            return None
        data = os.read(fd, KEY_BYTES + 1)
        return data if len(data) == KEY_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _make_key(path: Path) -> bytes | None:
    """A new key at ``path``: written under a temporary name, then linked into place, so
    that two runs making one at once agree on whichever landed first. A key that is not
    usable (another owner's, world-readable) is replaced only when it can be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{KEY_NAME}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            # Someone else's key or a damaged one: replace it with ours.
            if _read_key(path) is None:
                os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    except OSError:
        return None
    return _read_key(path)


def sign(secret: bytes, fields: Mapping[str, Any], bound: Mapping[str, str]) -> str:
    """The signature of ``fields`` (what the stamp file holds) and ``bound`` (what the
    verifier knows and the file must not hold, such as a URL with credentials)."""
    payload = json.dumps({"fields": fields, "bound": bound}, sort_keys=True, separators=(",", ":"))
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def write(path: Path, secret: bytes, fields: Mapping[str, Any], bound: Mapping[str, str]) -> None:
    """Write the stamp ``fields`` to ``path``, signed. Not fsync'ed: a stamp lost in a
    crash only means asking git once more. Raises OSError."""
    data = dict(fields, mac=sign(secret, fields, bound))
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            os.write(fd, json.dumps(data, sort_keys=True).encode())
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read(path: Path, secret: bytes | None, bound: Mapping[str, str]) -> dict[str, Any] | None:
    """The fields of the stamp at ``path`` when it is a small regular file (never
    followed through a symlink, never waited on as a FIFO) carrying our signature."""
    if secret is None:
        return None
    try:
        raw = read_limited(path, limit=MAX_STAMP_BYTES, follow=False)
    except OSError:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("mac"), str):
        return None
    mac = data.pop("mac")
    return data if hmac.compare_digest(mac, sign(secret, data, bound)) else None


def forget(path: Path) -> None:
    """Remove the stamp at ``path`` (before the tree it vouches for is changed); a
    directory planted in its place goes too (never followed: it is no symlink)."""
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except IsADirectoryError:
        shutil.rmtree(path)


_LEFTOVER = re.compile(r"^(\.stamp-probe|\..+\.tmp)-(?P<pid>[0-9]+)-[0-9a-f]+$")


def sweep(directory: Path) -> None:
    """Remove the probes and half-written stamps that killed runs left in ``directory``."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _LEFTOVER.match(name)
        if match and int(match["pid"]) != os.getpid() and not procs.alive(int(match["pid"])):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)


def fs_now(directory: Path) -> int:
    """The file system's own clock, in ns, as it stamps files in ``directory``: the
    mtime of a file made there now. Raises OSError."""
    probe = directory / f".stamp-probe-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        os.unlink(probe)


def take(root: Path, now: int) -> tuple[str, dict[str, str]] | None:
    """The tree digest of ``root`` and the content hashes of its racily clean entries
    (changed at or after ``now``, the file system's clock before the walk). None when
    the tree cannot be read or its racy files are too big to hash on every check."""
    lines: list[object] = []
    racy: dict[str, str] = {}
    budget = MAX_RACY_BYTES
    try:
        for relative, info in _walk(root):
            lines.append(_line(relative, info))
            if stat.S_ISDIR(info.st_mode) or max(info.st_mtime_ns, info.st_ctime_ns) < now:
                continue
            budget -= info.st_size
            if budget < 0:
                return None
            racy[os.fsdecode(relative)] = _content(root, relative, info)
    except OSError:
        return None
    return _digest(lines), racy


def matches(root: Path, tree: str, racy: Mapping[str, str]) -> bool:
    """``root`` is as ``take`` saw it: the same digest, and every racily clean entry
    still holds the content hashed then."""
    lines: list[object] = []
    seen = 0
    try:
        for relative, info in _walk(root):
            lines.append(_line(relative, info))
            if racy and (wanted := racy.get(os.fsdecode(relative))) is not None:
                seen += 1
                if _content(root, relative, info) != wanted:
                    return False
    except OSError:
        return False
    return seen == len(racy) and hmac.compare_digest(_digest(lines), tree)


def _line(relative: bytes, info: os.stat_result) -> object:
    """What is compared of one entry: its path and stat data (a directory's size is
    left out: it depends on the file system's bookkeeping, not on the entries)."""
    size = 0 if stat.S_ISDIR(info.st_mode) else info.st_size
    return (relative, info.st_mode, size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_uid,
            info.st_gid)


def _digest(lines: list[object]) -> str:
    # repr of bytes and ints is exact and unambiguous, and one call for the whole tree.
    return hashlib.sha256(repr(lines).encode()).hexdigest()


def _walk(root: Path) -> Iterator[tuple[bytes, os.stat_result]]:
    """Every entry under ``root`` (the root itself first), depth first in name order,
    with its lstat: a symlink is an entry, never followed."""
    base = os.fsencode(root)
    yield b".", os.lstat(base)
    stack: list[bytes] = [b""]
    by_name = operator.attrgetter("name")
    while stack:
        prefix = stack.pop()
        with os.scandir(base + b"/" + prefix if prefix else base) as listing:
            entries = sorted(listing, key=by_name)
        below: list[bytes] = []
        for entry in entries:
            relative = prefix + b"/" + entry.name if prefix else entry.name
            info = entry.stat(follow_symlinks=False)
            yield relative, info
            if stat.S_ISDIR(info.st_mode):
                below.append(relative)
        stack.extend(reversed(below))


def _content(root: Path, relative: bytes, info: os.stat_result) -> str:
    """sha256 of a file's bytes or a symlink's target; other kinds hash their type."""
    path = os.path.join(os.fsencode(root), relative)
    if stat.S_ISLNK(info.st_mode):
        return hashlib.sha256(b"link\0" + os.readlink(path)).hexdigest()
    if not stat.S_ISREG(info.st_mode):
        return hashlib.sha256(b"kind\0%o" % stat.S_IFMT(info.st_mode)).hexdigest()
    digest = hashlib.sha256(b"file\0")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "no longer a regular file", path)
        while block := os.read(fd, 1 << 20):
            digest.update(block)
    finally:
        os.close(fd)
    return digest.hexdigest()
