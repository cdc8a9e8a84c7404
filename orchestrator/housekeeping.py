"""Removing what builds leave: a release's outputs and state, a whole workspace, and the
mirror cache's unused mirrors and leftovers of interrupted fetches.

Everything removed is inside the workspace or the mirror cache, checked on the resolved
path before anything goes; a symlink is removed as a link, never followed. Nothing here
prints: callers show the returned ``Removal`` list (and ``dry_run`` only computes it).

The mirror cache is shared by every workspace and project of the user: a mirror that the
manifest at hand does not name may be another's. It goes only when no fetch used it for
``unused_days`` (see ``orchestrator.mirroruse``), and never while a run holds its lock,
judged again once its lock is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator import mirroruse
from orchestrator.errors import OrchestratorError
from orchestrator.gitcache import live_holder, stop_leftovers


@dataclass(frozen=True, slots=True, kw_only=True)
class Removal:
    """One path removed (or that would be, in a dry run), and why it existed."""

    path: Path
    what: str
    size: int  # bytes on disk, apparent sizes summed
    kept: bool = False  # not removed: in use


MIRROR = "mirror of a repository the manifest does not name"
LEFTOVER = "left by an interrupted fetch"
UNUSED_DAYS = 30  # `clean --cache --unused-for`'s default
# What a fetch of mirror <name> makes beside it: a new mirror before its rename into
# place (gitcache.ensure_mirror), an old one being discarded, one clean is removing.
_MIRROR_TEMP = re.compile(r"\.tmp~(?P<mirror>[^~/]+\.git)~[^/]*")


class CleanError(OrchestratorError):
    """A path could not be removed, or lies outside what clean may touch."""


def release_paths(workspace: Path, release: str) -> list[tuple[Path, str]]:
    """What one release leaves in a workspace: its dist/ directory, cache records and logs."""
    return _with_leftovers([
        (workspace / "dist" / release, f"release {release}: outputs and record"),
        (workspace / ".build" / "state" / release, f"release {release}: cache records"),
        (workspace / ".build" / "logs" / release, f"release {release}: build logs"),
    ])


def workspace_paths(workspace: Path) -> list[tuple[Path, str]]:
    """Everything the orchestrator keeps in a workspace, but the workspace lock that the
    cleaning run holds (removing a held lock file would let a second writer in)."""
    from orchestrator.workspace import LOCK_NAME, OWNER_NAME

    build = workspace / ".build"
    kept = {LOCK_NAME, OWNER_NAME}
    inside = sorted(entry for entry in build.iterdir() if entry.name not in kept) if build.is_dir() else []
    return _with_leftovers([(workspace / "dist", "every release's outputs"),
                            *((entry, f".build/{entry.name}") for entry in inside)])


def _with_leftovers(paths: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """``paths``, each followed by what an interrupted removal of it left (see _remove_tree):
    nothing else ever looks at that name again."""
    found: dict[Path, str] = {}
    for path, what in paths:
        found.setdefault(path, what)
        if os.path.lexists(leftover := _doomed(path)):
            found.setdefault(leftover, f"{what}: left by an interrupted clean")
    return list(found.items())


def cache_paths(cache_dir: Path, keep: Iterable[str]) -> list[tuple[Path, str]]:
    """Mirrors in ``cache_dir`` not named in ``keep`` (mirror directory names), and what
    interrupted fetches left. Lock files stay: a fetch may be waiting on one. Whether a
    mirror listed here goes is ``remove``'s to judge (how long it has been unused)."""
    if not cache_dir.is_dir():
        return []
    kept = set(keep)
    found: list[tuple[Path, str]] = []
    for entry in sorted(cache_dir.iterdir()):
        if entry.name.startswith(".tmp~"):
            found.append((entry, LEFTOVER))
        elif entry.name.endswith(".git") and entry.name not in kept:
            found.append((entry, MIRROR))
    return found


def remove(paths: Iterable[tuple[Path, str]], *, roots: Iterable[Path], dry_run: bool = False,
           unused_days: int | None = None, now: float | None = None) -> list[Removal]:
    """Remove each existing path (a directory with everything in it); returns what went.

    Every path must lie inside one of ``roots`` once resolved (its parent resolved, the
    path itself not followed), else CleanError and nothing is removed. A mirror (``what``
    is ``MIRROR``), and what a fetch of it left, is removed only while holding its lock: a
    fetch elsewhere may be using it. A mirror is kept, and its Removal says so (``kept``),
    when a live run holds its lock or is named by its lock record, and when it was used
    in the last ``unused_days`` days (default ``UNUSED_DAYS``) by the clock ``now``.
    """
    days = UNUSED_DAYS if unused_days is None else unused_days
    clock = time.time() if now is None else now
    allowed = [root.resolve() for root in roots]
    todo: list[tuple[Path, str]] = []
    for path, what in paths:
        if not os.path.lexists(path):
            continue
        where = path.parent.resolve() / path.name
        if not any(where != root and where.is_relative_to(root) for root in allowed):
            raise CleanError(f"refusing to remove {path}: it is outside the workspace and the mirror cache",
                             hint="check --workspace and --cache-dir")
        todo.append((where, what))
    done: list[Removal] = []
    for path, what in todo:
        with _mirror_lock(None if dry_run else _guarding_mirror(path, what)) as (busy, notes):
            if not os.path.lexists(path):
                continue  # removed meanwhile: a fetch swept its leftovers, another clean went first
            if busy is not None:
                done.append(Removal(path=path, what=f"{what}: {busy}", size=0, kept=True))
                continue
            if what == MIRROR:
                recent = _recently_used(path, days, clock)
                if recent is not None:
                    done.append(Removal(path=path, what=f"{recent}; not named by this manifest", size=0, kept=True))
                    continue
                what = f"{what}; {_unused_for(path, clock)}"
            size = _size(path)
            if not dry_run:
                _remove(path)
            done.append(Removal(path=path, what="; ".join([what, *notes]), size=size))
    return done


def _guarding_mirror(path: Path, what: str) -> Path | None:
    """The mirror whose lock guards ``path``: a mirror's own, or that of the mirror a fetch
    was making or discarding in a ``.tmp~<mirror>~*`` leftover; None for anything else."""
    if what == MIRROR:
        return path
    found = _MIRROR_TEMP.fullmatch(path.name) if what == LEFTOVER else None
    return path.with_name(found["mirror"]) if found else None


def _recently_used(mirror: Path, days: int, now: float) -> str | None:
    """Why ``mirror`` must stay (used within ``days``, or its last use lies in the future),
    or None when it may go."""
    last = mirroruse.last_use(mirror)
    if last is None:
        return None
    if last.in_future(now) or last.age(now) < days * mirroruse.DAY:
        return last.describe(now)
    return None


def _unused_for(mirror: Path, now: float) -> str:
    last = mirroruse.last_use(mirror)
    return last.unused(now) if last is not None else "no use recorded"


def _remove(path: Path) -> None:
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            _remove_tree(path)
    except FileNotFoundError:
        return  # removed meanwhile (see remove)
    except OSError as e:
        raise CleanError(f"cannot remove {path}: {e.strerror or e}",
                         hint="check its permissions; nothing after it was removed") from e


_BUSY = "in use by a running fetch"


@contextlib.contextmanager
def _mirror_lock(mirror: Path | None) -> Iterator[tuple[str | None, list[str]]]:
    """Hold a mirror's lock (the flock its fetches take) without waiting: (None, notes) when
    held, (why it is kept, []) when not.

    A holder killed with kill -9 let the lock go but not its processes (a git transport still
    writing the mirror): like a fetch taking the lock, they are stopped first (``notes`` say
    so), and a mirror whose dead holder's processes cannot be stopped is kept."""
    if mirror is None:
        yield None, []
        return
    lock = mirror.with_name(mirror.name + ".lock")
    if not os.path.lexists(mirror) and not os.path.lexists(lock):
        # A leftover of a mirror never locked since: a fetch takes the lock before it
        # makes one, so none is at work (and no lock file is made for a mirror that is gone).
        yield None, []
        return
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError:
        yield _BUSY, []
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        yield _BUSY, []
        return
    try:
        notes: list[str] = []
        record = lock.with_name(lock.name + ".owner")
        if (holder := live_holder(record)) is not None:
            # Its lock file was replaced under it (the flock we hold is on a new file).
            yield f"in use by {holder.describe()}", []
            return
        try:
            stop_leftovers(record, mirror.parent, mirror.name, lambda name, message: notes.append(message))
        except OrchestratorError as e:
            yield f"still written by processes of a killed run: {e.message}", []
            return
        yield None, notes
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    # Rename first: an interrupted removal must not leave a half-deleted tree at a path
    # that a later run reads as a release or a mirror.
    doomed = _doomed(path)
    if os.path.lexists(doomed):
        shutil.rmtree(doomed)
    os.rename(path, doomed)
    shutil.rmtree(doomed)


def _doomed(path: Path) -> Path:
    return path.with_name(f".tmp~{path.name}~removing")


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(folder, name)).st_size
    return total
