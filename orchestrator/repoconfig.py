"""The git config of our own repositories: written by us, byte for byte, and checked
before each use.

A repository's ``config`` can make git run programs (``core.fsmonitor``,
``filter.*``, ``remote.*.uploadpack``, ``include.path`` pulling in any of those; the
full list is in ``orchestrator.gitcmd``). Mirrors and checkouts live where others can
write (the cache, ``.build/``), so their config is pinned: we write it whole after
``git init`` and compare its bytes before trusting the repository again, which costs
one small read and no git process. The files that redirect git to other objects or
another repository, or that name filters, must not exist at all, and no directory git
writes into may be a symlink (git never makes one).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.fileops import write_atomic

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


def tampering(git_dir: Path, expected: bytes) -> str | None:
    """Why ``git_dir`` is not as we left it, or None when its config is ours and nothing
    foreign was added. A missing config is None too: that is damage, not tampering,
    and the caller's own check reports it."""
    try:
        if stat.S_ISLNK(os.lstat(git_dir).st_mode):
            return f"{git_dir.name} is a symlink"
        info = os.lstat(git_dir / "config")
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return "its config is not a regular file"
    if info.st_size != len(expected) or (git_dir / "config").read_bytes() != expected:
        return "its git config is not the one the orchestrator wrote"
    for name in _FOREIGN:
        if os.path.lexists(git_dir / name):
            return f"it holds {name}, which the orchestrator never writes"
    return _symlink_in(git_dir)


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
