"""Removing what builds leave: a release's outputs and state, a whole workspace, and the
mirror cache's unused mirrors and leftovers of interrupted fetches.

Everything removed is inside the workspace or the mirror cache, checked on the resolved
path before anything goes; a symlink is removed as a link, never followed. Nothing here
prints: callers show the returned ``Removal`` list (and ``dry_run`` only computes it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OrchestratorError


@dataclass(frozen=True, slots=True, kw_only=True)
class Removal:
    """One path removed (or that would be, in a dry run), and why it existed."""

    path: Path
    what: str
    size: int  # bytes on disk, apparent sizes summed


class CleanError(OrchestratorError):
    """A path could not be removed, or lies outside what clean may touch."""


def release_paths(workspace: Path, release: str) -> list[tuple[Path, str]]:
    """What one release leaves in a workspace: its dist/ directory, cache records and logs."""
    return [
        (workspace / "dist" / release, f"release {release}: outputs and record"),
        (workspace / ".build" / "state" / release, f"release {release}: cache records"),
        (workspace / ".build" / "logs" / release, f"release {release}: build logs"),
    ]


def workspace_paths(workspace: Path) -> list[tuple[Path, str]]:
    """Everything the orchestrator keeps in a workspace."""
    return [
        (workspace / "dist", "every release's outputs"),
        (workspace / ".build", "checkouts, logs, cache records and the demo"),
    ]


def cache_paths(cache_dir: Path, keep: Iterable[str]) -> list[tuple[Path, str]]:
    """Mirrors in ``cache_dir`` not named in ``keep`` (mirror directory names) with their lock
    files, locks whose mirror is gone, and what interrupted fetches left."""
    if not cache_dir.is_dir():
        return []
    kept = set(keep)
    entries = sorted(cache_dir.iterdir())
    mirrors = {entry.name for entry in entries if entry.name.endswith(".git")}
    found: list[tuple[Path, str]] = []
    for entry in entries:
        name = entry.name
        if name.startswith(".tmp~"):
            found.append((entry, "left by an interrupted fetch"))
        elif name in mirrors and name not in kept:
            found.append((entry, "mirror of a repository the manifest does not name"))
            # Its lock and lock-owner files go with it (an empty "what" folds them in).
            found += [(lock, "") for lock in sorted(cache_dir.glob(f"{name}.lock*"))]
        elif ".git.lock" in name and name.partition(".git.lock")[0] + ".git" not in mirrors:
            found.append((entry, "lock of a mirror that is gone"))
    return found


def remove(paths: Iterable[tuple[Path, str]], *, roots: Iterable[Path], dry_run: bool = False) -> list[Removal]:
    """Remove each existing path (a directory with everything in it); returns what went.

    Every path must lie inside one of ``roots`` once resolved (its parent resolved, the
    path itself not followed), else CleanError and nothing is removed.
    """
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
        size = _size(path)
        if not what and done:  # a companion (a mirror's lock): counted with the entry before it
            done[-1] = Removal(path=done[-1].path, what=done[-1].what, size=done[-1].size + size)
        if not dry_run:
            try:
                if path.is_symlink() or not path.is_dir():
                    path.unlink()
                else:
                    _remove_tree(path)
            except OSError as e:
                raise CleanError(f"cannot remove {path}: {e.strerror or e}",
                                 hint="check its permissions; nothing after it was removed") from e
        if what or not done:
            done.append(Removal(path=path, what=what, size=size))
    return done


def _remove_tree(path: Path) -> None:
    # Rename first: an interrupted removal must not leave a half-deleted tree at a path
    # that a later run reads as a release or a mirror.
    doomed = path.with_name(f".tmp~{path.name}~removing")
    if os.path.lexists(doomed):
        shutil.rmtree(doomed)
    os.rename(path, doomed)
    shutil.rmtree(doomed)


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(folder, name)).st_size
    return total
