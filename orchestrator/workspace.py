"""The workspace lock: one writer per workspace at a time.

``build``, ``fetch``, ``publish`` and ``demo`` hold an exclusive flock on
``.build/workspace.lock`` for their whole run; readers (``manifest``, ``verify``,
``build --dry-run``) never take it, so they never wait. Two builds in one workspace
would otherwise write one release directory at once (a record saying "ok" over
another build's files), and a fetch would ``git clean`` a checkout under a build.

Beside the lock, ``.build/workspace.owner`` records the holder (``procs.Owner``): a
second writer names it in its message, and the next writer learns that the last one
died without cleaning up (kill -9, OOM): the record is still there, its process is
not. The kernel drops a flock when its holder dies, so a dead holder never blocks
anyone; its record only says whose orphans to look for.

fcntl.flock directly rather than filelock: filelock falls back to a lock file that a
dead process leaves behind where flock is missing, and taking over a dead holder's
lock is the point here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator import procs
from orchestrator.errors import OrchestratorError

LOCK_NAME = "workspace.lock"
OWNER_NAME = "workspace.owner"
_TOKEN = re.compile(r"[0-9a-f]{32}")  # procs.run_token()
_NAMING_SECONDS = 1.0  # how long a refused writer waits for a new holder to record itself


class WorkspaceError(OrchestratorError):
    """The workspace cannot be used: not a directory, not writable. Exit code 1."""


class WorkspaceBusy(OrchestratorError):
    """Another writer holds the workspace. Exit code 1."""

    def __init__(self, workspace: Path, holder: procs.Owner | None) -> None:
        who = holder.describe() if holder is not None else "another process (it has not recorded who it is yet)"
        super().__init__(f"workspace {workspace} is in use by {who}",
                         hint="wait for it to finish, or use --wait to wait for it")
        self.workspace, self.holder = workspace, holder


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """The lock, held. ``dead`` is the record of a writer that died holding it, if any."""

    workspace: Path
    dead: procs.Owner | None


@contextlib.contextmanager
def hold(workspace: Path, *, wait: bool = False, on_wait: Callable[[str], None] | None = None) -> Iterator[Holding]:
    """Hold ``workspace`` exclusively for the ``with`` block.

    Held by another live writer: WorkspaceBusy at once, or (``wait``) block until it is
    free, saying once through ``on_wait`` whom we wait for. Signals interrupt the wait.
    """
    build_dir = workspace / ".build"
    fd = _open(workspace, build_dir)
    recorded = False
    owner = build_dir / OWNER_NAME
    try:
        if not _try_lock(fd):
            holder = _holder(owner)
            if not wait:
                raise WorkspaceBusy(workspace.absolute(), holder)
            if on_wait is not None:
                who = holder.describe() if holder is not None else "another process"
                on_wait(f"waiting for workspace {workspace.absolute()}: in use by {who}")
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks; a signal handler that raises ends the wait
        previous = procs.read_owner(owner)
        # A live previous owner gave the lock up without removing its record (it may still
        # be running, but not as this workspace's writer): not a dead run to clean up after.
        # .build/ is not trusted: a record whose token is not one of ours names nothing to stop.
        dead = previous if previous is not None and not previous.alive and _TOKEN.fullmatch(previous.token) else None
        try:
            procs.write_owner(owner, procs.me())
        except OSError as e:
            raise WorkspaceError(f"cannot record the lock owner in {owner}: {e.strerror}",
                                 hint="check free space and permissions of the workspace") from e
        recorded = True
        yield Holding(workspace=workspace, dead=dead)
    finally:
        if recorded:
            # Removed while still held: the next writer sees no record, so a clean exit.
            with contextlib.suppress(OSError):
                owner.unlink()
        os.close(fd)


def refuse_links(*paths: Path) -> None:
    """Refuse to write into directories of ours under ``.build/`` or ``dist/`` when one is
    a symlink: anyone who can write the workspace could point it anywhere (``dist/<release>
    -> ~/bin``), and the writes and removals meant for it would land there."""
    for path in paths:
        if path.is_symlink():
            raise WorkspaceError(f"{path} is a symbolic link (-> {os.readlink(path)}); the orchestrator writes "
                                 "only inside the workspace, never through a link",
                                 hint=f"remove the link ({path}), then run again")


def _open(workspace: Path, build_dir: Path) -> int:
    if workspace.exists() and not workspace.is_dir():
        raise WorkspaceError(f"workspace {workspace} is not a directory",
                             hint="give --workspace a directory (a missing one is created)")
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
        return os.open(build_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        where = e.filename or build_dir
        raise WorkspaceError(f"cannot use workspace {workspace}: {where}: {e.strerror}",
                             hint="the workspace and its .build/ must be writable directories; "
                                  "fix the permissions or choose another --workspace") from e


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(owner: Path) -> procs.Owner | None:
    """The live writer recorded at ``owner``; a new holder may need a moment to record itself."""
    deadline = time.monotonic() + _NAMING_SECONDS
    while True:
        found = procs.read_owner(owner)
        if found is not None and found.alive:
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
