"""The git config of our own repositories: written by us, and checked before each use.

A repository's ``config`` can make git run programs (``core.fsmonitor``,
``filter.*``, ``remote.*.uploadpack``, ``include.path`` pulling in any of those; the
full list is in ``orchestrator.gitcmd``). Mirrors and checkouts live where others can
write (the cache, ``.build/``), so their config is pinned: we write it whole after
``git init``, and before trusting the repository again we read it, without git, with a
small strict parser of the subset we write. It is trusted when every setting in it is
one we write, with the value we write (``bare = yes`` means ``bare = true``; layout,
order, case of names and comments do not matter: another version of the orchestrator,
or git itself, may have written it), and is then rewritten to this version's bytes.
Any other key (``include.path``, ``core.hooksPath``, a ``[remote]``, a filter, ...), a
value we do not write, or a line the parser does not know, and it is not trusted.
That costs one small read and no git process. The files that redirect git to other
objects or another repository, or that name filters, must not exist at all, and no
directory git writes into may be a symlink (git never makes one).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from orchestrator.fileops import read_limited, write_atomic

# Exactly what git init writes on a POSIX file system, plus our settings, in git's format.
MIRROR = (
    b"[core]\n"
    b"\trepositoryformatversion = 0\n"
    b"\tfilemode = true\n"
    b"\tbare = true\n"
    b"\tlogallrefupdates = false\n"
    b"[gc]\n"
    # Auto-gc must not outlive the fetch that started it, nor the lock we hold.
    b"\tautoDetach = false\n"
    b"[uploadpack]\n"
    # Checkouts fetch commits by id from the mirror, whatever protocol is spoken.
    b"\tallowAnySHA1InWant = true\n"
)
CHECKOUT = (
    b"[core]\n"
    b"\trepositoryformatversion = 0\n"
    b"\tfilemode = true\n"
    b"\tbare = false\n"
    b"\tlogallrefupdates = false\n"
    b"[gc]\n"
    b"\tautoDetach = false\n"
)
# Never written by us; each makes git read other objects, another repository's files,
# substitute history, or apply attributes (filters, export-ignore) nobody committed.
# remotes/ and branches/ hold git's legacy remote definitions, read for a "URL" that is
# also a valid remote name (no "/", as in git@host:repo.git): they would send every
# fetch and ls-remote of that URL to a repository of their writer's choosing.
_FOREIGN = ("commondir", "objects/info/alternates", "info/grafts", "info/attributes", "remotes", "branches")


_NOT_OURS = "its git config is not the one the orchestrator wrote"
_MAX_CONFIG = 65536  # ours is 200 bytes; git's own additions would be a few lines more


def init(git_dir: Path, expected: bytes) -> None:
    """Make an empty repository at ``git_dir``, exactly what ``git init --template=``
    makes (HEAD on ``main``, the empty object and ref directories) with our config: no
    git process needed."""
    for directory in ("objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (git_dir / directory).mkdir(parents=True, exist_ok=True)
    # Not fsync'ed: a HEAD lost in a crash makes the repository damaged, and damaged
    # repositories are discarded and made again (gitcache).
    (git_dir / "HEAD").write_bytes(b"ref: refs/heads/main\n")
    write(git_dir, expected)


def write(git_dir: Path, expected: bytes) -> None:
    """Replace the config git init wrote with ours."""
    write_atomic(git_dir / "config", expected)


def as_written(git_dir: Path, expected: bytes) -> bool:
    """``git_dir`` holds ``expected``'s very bytes as its config and nothing foreign: what
    a path that runs no git may rely on. A config that says the same in another form is
    not enough there: ``trust``, on the git path, rewrites it first, so that git never
    reads a form our parser and git's could understand differently."""
    problem, found = _inspect(git_dir, expected)
    return problem is None and found == expected


def trust(git_dir: Path, expected: bytes) -> str | None:
    """Why ``git_dir`` is not as we left it, or None when its config means what ours
    means and nothing foreign was added (a missing config is None too: that is damage,
    not tampering, and the caller's own check reports it). When it is trusted, a config
    that says the same in another form is rewritten to ``expected``'s bytes, before any
    git process reads it."""
    problem, found = _inspect(git_dir, expected)
    if problem is None and found is not None and found != expected:
        write(git_dir, expected)
    return problem


def _inspect(git_dir: Path, expected: bytes) -> tuple[str | None, bytes | None]:
    """(why ``git_dir`` is not trusted or None, the bytes of its config or None)."""
    try:
        if stat.S_ISLNK(os.lstat(git_dir).st_mode):
            return f"{git_dir.name} is a symlink", None
        found = _read_config(git_dir / "config")
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except _Unreadable as e:
        return str(e), None
    if found != expected and (problem := _differs(found, expected)) is not None:
        return f"{_NOT_OURS}: {problem}", found
    for name in _FOREIGN:
        if os.path.lexists(git_dir / name):
            return f"it holds {name}, which the orchestrator never writes", found
    return _symlink_in(git_dir), found


class _Unreadable(Exception):
    """A config that is no regular file, or too big to be ours."""


def _read_config(path: Path) -> bytes:
    """The bytes of ``path``, opened without following a symlink or waiting on a FIFO."""
    try:
        return read_limited(path, limit=_MAX_CONFIG, follow=False)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as e:
        if e.errno == errno.EFBIG:
            raise _Unreadable(f"{_NOT_OURS}: it is larger than {_MAX_CONFIG} bytes") from e
        raise _Unreadable("its config is not a regular file") from e


# The settings we write, and how git reads their values.
_TYPES = {
    "core.repositoryformatversion": "int",
    "core.filemode": "bool",
    "core.bare": "bool",
    "core.logallrefupdates": "bool",
    "gc.autodetach": "bool",
    "uploadpack.allowanysha1inwant": "bool",
}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0", "")
# The subset of git's config syntax that git and the orchestrator write for these settings:
# no escapes, no continuation lines, no value holding anything but letters and digits.
# A subsection (only in keys we refuse, but named in the message): printable ASCII, with
# a double quote or backslash only escaped.
_SUB = r'(?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*'
_SECTION = re.compile(rf'\[(?P<section>[A-Za-z0-9.-]+)(?:[ \t]+"(?P<sub>{_SUB})")?\]')
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_VALUE = re.compile(r'[ \t]*(?:=[ \t]*(?P<value>"[A-Za-z0-9]*"|[A-Za-z0-9]*))?')
_TAIL = re.compile(r"[ \t]*(?:[#;][\x20-\x7e\t]*)?")


def _differs(found: bytes, expected: bytes) -> str | None:
    """What in ``found`` the orchestrator would not write, or None when every setting in
    it is one of ``expected``'s, with the same value (settings left out are no danger:
    ours replace the file before git reads it)."""
    ours = dict(_settings(expected))
    try:
        for name, value in _settings(found):  # the first problem in the file's order
            if name not in ours:
                return f"it sets {name}"
            if value != ours[name]:
                return f"it sets {name} to {value}"
    except ValueError as e:
        return str(e)
    return None


def _settings(config: bytes) -> Iterator[tuple[str, str]]:
    """(name, value as git reads it) of each setting in ``config``; ValueError at the
    first line outside the subset, or the first setting we never write."""
    try:
        text = config.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("it holds bytes that are not ASCII") from None
    section: str | None = None
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r").lstrip(" \t")
        if _TAIL.fullmatch(line):  # blank, or a comment
            continue
        if header := _SECTION.match(line):
            if not _TAIL.fullmatch(line, header.end()):
                raise ValueError(f"line {number} is not one the orchestrator writes")
            sub = header["sub"]
            section = header["section"].lower() + (f".{sub}" if sub is not None else "")
            continue
        key = _KEY.match(line)
        if key is None or section is None:
            raise ValueError(f"line {number} is not one the orchestrator writes")
        name = f"{section}.{key[0].lower()}"
        if name not in _TYPES:  # before its value: whatever that holds, the key is refused
            raise ValueError(f"it sets {name}")
        value = _VALUE.match(line, key.end())
        if value is None or not _TAIL.fullmatch(line, value.end()):
            raise ValueError(f"line {number} ({name}) is not one the orchestrator writes")
        yield name, _typed(name, value["value"])


def _typed(name: str, raw: str | None) -> str:
    """A value as git reads it: a key alone is true; booleans and numbers in one spelling."""
    if raw is None:
        return "true"
    word = raw.strip('"').lower()
    if _TYPES[name] == "bool" and word in (*_TRUE, *_FALSE):
        return "true" if word in _TRUE else "false"
    if _TYPES[name] == "int" and word.isdigit():
        return str(int(word))
    kind = "a boolean" if _TYPES[name] == "bool" else "an integer"
    raise ValueError(f"it sets {name} to {raw!r}, which git does not read as {kind}")


def _symlink_in(git_dir: Path) -> str | None:
    """git never makes a symlink in a repository: one among its entries, or those of
    objects/ and refs/ (where git writes and our stale-lock sweep deletes), would send
    those writes and deletions out of the cache or the workspace."""
    for where in ("", "objects", "refs"):
        try:
            entries = list(os.scandir(git_dir / where))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_symlink():
                return f"it holds {where + '/' if where else ''}{entry.name}, a symlink"
    return None
