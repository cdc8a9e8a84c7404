"""What a repository knows about a commit: what a name resolves to, whether a commit's
history can be walked, and when it was committed. Every answer comes from one git
process through ``gitcmd.run``; commit times are remembered, as they never change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.gitcmd import GitResult, run


def rev_parse(git_dir: Path, rev: str) -> str | None:
    """The object id ``rev`` names in ``git_dir``, or None if it names nothing there."""
    result = run(["rev-parse", "--verify", "--quiet", rev], git_dir=git_dir)
    return result.stdout.strip() if result.ok else None


def has_commit(git_dir: Path, commit: str) -> bool:
    """``commit`` is in ``git_dir`` *and* its history is walkable.

    A fetch killed after writing objects but before updating ``.git/shallow`` leaves
    a commit whose parents are neither present nor grafted away: it resolves, but
    ``git log`` (and a build's ``git describe``) fail on it. ``rev-list -1`` parses
    the parents, so it tells the two apart; such a commit must be fetched again.
    """
    return rev_parse(git_dir, f"{commit}^{{commit}}") == commit and walkable(git_dir, commit)


def walkable(git_dir: Path, commit: str) -> bool:
    """The history of an existing ``commit`` can be walked (see has_commit)."""
    return commit_timestamp(git_dir, commit) is not None


# Successes only: a commit's time never changes, and a history that could be
# walked stays walkable; a failure may be repaired by the next fetch.
_TIMESTAMPS: dict[tuple[Path, str], int] = {}


def remember(git_dir: Path, commit: str, timestamp: int) -> None:
    """``commit``'s history was walked in ``git_dir`` (by the caller's own git process)."""
    _TIMESTAMPS[(git_dir, commit)] = timestamp


def forget(git_dir: Path) -> None:
    """Drop what is remembered about ``git_dir``: it was discarded."""
    for key in [key for key in _TIMESTAMPS if key[0] == git_dir]:
        _TIMESTAMPS.pop(key, None)


def commit_timestamp(git_dir: Path, commit: str, *, check: Callable[[GitResult], None] | None = None) -> int | None:
    """The committer time of ``commit``, or None when its history cannot be walked.

    ``rev-list -1 --timestamp`` parses the commit's parents, so one git process
    answers both "is it walkable" and "when was it committed". ``check`` sees a
    failed result first (to tell damaged objects from a merely unwalkable history).
    """
    key = (git_dir, commit)
    if key in _TIMESTAMPS:
        return _TIMESTAMPS[key]
    result = run(["rev-list", "--max-count=1", "--timestamp", commit], git_dir=git_dir)
    if not result.ok and check is not None:
        check(result)
    stamp = result.stdout.split()[0] if result.ok and result.stdout.strip() else ""
    if not stamp.isdigit():
        return None
    _TIMESTAMPS[key] = int(stamp)
    return int(stamp)
