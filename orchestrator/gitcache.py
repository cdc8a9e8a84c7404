"""Mirrors and checkouts on disk: locks, creation by rename, repair after an
interrupted run, and checking a commit out of a mirror.

Every change to a mirror or checkout happens under its ``filelock`` lock, so any git
lock file found while holding it was left by a process that died (Ctrl-C, OOM, CI
timeout) and is safe to delete once no git process of that run is left. The holder
of each lock is recorded next to it (``<lock>.owner``): a run that takes a lock whose
record names a dead holder first kills the processes that carry that holder's run
token (git processes orphaned by a kill -9, still writing), and only then touches
git's lock files.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import gitcmd, gitcommits, mirroruse, procs, repoconfig
from orchestrator.checkoutstamp import head_is
from orchestrator.errors import SourceError
from orchestrator.fileops import read_limited
from orchestrator.gitcmd import must, run
from orchestrator.gitcommits import has_commit, rev_parse
from orchestrator.gitfailure import Cancelled, CorruptObjectsError, GitResult, NoSpaceError

if TYPE_CHECKING:
    from filelock import FileLock

Emit = Callable[[str, str], None]

LOCK_TIMEOUT = 1800.0
# What git accepts in HEAD: a symbolic ref into refs/, or a detached object id.
_HEAD = re.compile(rb"(ref: refs/[^\x00-\x20]+|[0-9a-f]{40})\n?")


@contextmanager
def locked(path: Path, name: str, emit: Emit) -> Iterator[None]:
    """Hold the inter-process lock ``path`` (threads of one process exclude each other too)."""
    from filelock import FileLock  # noqa: PLC0415  (lazy: a warm run that needs no git takes no lock)

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    # Waits for a sibling thread on a shared mirror are short: say nothing of those.
    if not _acquire(lock, 1.0):
        emit(name, f"waiting for the lock {path.name}: another fetch is using the same directory")
        if not _acquire(lock, LOCK_TIMEOUT):
            raise SourceError(
                f"{name}: gave up after {LOCK_TIMEOUT:g}s waiting for the lock {path}",
                hint="another orchestrator run holds it; if none is running, delete the file",
            )
    record = path.with_name(path.name + ".owner")
    mine = False
    try:
        stop_leftovers(record, path.parent, name, emit)
        try:
            procs.write_owner(record, procs.me())
        except OSError as error:  # a write error names no file: say which disk is full
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NoSpaceError(name, path.parent) from error
            raise
        mine = True
        yield
    finally:
        if mine:  # a dead holder's record stays until its processes are gone
            record.unlink(missing_ok=True)
        lock.release()


def _acquire(lock: FileLock, timeout: float) -> bool:
    """Take ``lock`` within ``timeout`` seconds; a cancelled run stops waiting at once."""
    from filelock import Timeout  # noqa: PLC0415
    deadline = time.monotonic() + timeout
    while True:
        if gitcmd.cancelled():
            raise Cancelled
        try:
            lock.acquire(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
            return True
        except Timeout:
            if time.monotonic() >= deadline:
                return False


def stop_leftovers(record: Path, where: Path, name: str, emit: Emit) -> None:
    """Kill what the recorded holder of a lock we now hold left running.

    We hold the lock, so its recorded holder let go of it: it died without removing its
    record (kill -9, OOM), and git processes it started may still be writing. A holder
    that looks alive is another story (its lock file was deleted under it): never touch
    a live run's processes.
    """
    owner = _read_record(record)
    if owner is None or owner.token == procs.run_token() or owner.alive:
        return
    killed = procs.kill(procs.RUN_VARIABLE, owner.token)
    if killed:
        emit(name, f"stopped {len(killed)} process(es) left by a killed run ({owner.describe()})")
    left = procs.find(procs.RUN_VARIABLE, owner.token)
    if left:
        raise SourceError(
            f"{name}: processes {', '.join(map(str, left))} of a killed run ({owner.describe()}) are still "
            f"running and may be writing {where}",
            hint="stop them (kill -9), then run again",
        )


def live_holder(record: Path) -> procs.Owner | None:
    """The run the lock record ``record`` names, when it is alive and not this one: it
    still works on what the lock guards, even if its lock file was replaced under it."""
    owner = _read_record(record)
    return owner if owner is not None and owner.token != procs.run_token() and owner.alive else None


def _read_record(record: Path) -> procs.Owner | None:
    """The owner recorded at ``record``. The cache is not trusted: anything but a small
    regular file (a symlink, a FIFO, /dev/zero) is removed unread."""
    try:
        info = record.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > 65536:
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(record)
        else:
            record.unlink()
        return None
    return procs.read_owner(record)


def ensure_mirror(mirror: Path, name: str, emit: Emit) -> None:
    """Make ``mirror`` a usable bare repository, repairing what a killed run left.

    A new mirror is made in a temporary directory and renamed into place, so a
    half-made one is never found at the final path by a later run.
    """
    cache = mirror.parent
    cache.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(cache, mirror.name, name, emit)
    if mirror.exists():
        if _trusted(mirror, repoconfig.MIRROR, name, emit) and _is_repo(mirror):
            _clear_stale_locks(mirror, name, emit)
            _mark_used(mirror, name, emit)
            return
        emit(name, f"discarding damaged mirror {mirror}")
        discard(mirror)
    temp = Path(tempfile.mkdtemp(prefix=f".tmp~{mirror.name}~", dir=cache))
    repoconfig.init(temp, repoconfig.MIRROR)
    os.rename(temp, mirror)
    _mark_used(mirror, name, emit)


def _mark_used(mirror: Path, name: str, emit: Emit) -> None:
    """Stamp the mirror's use, for `clean --cache` in any workspace sharing the cache (see
    mirroruse). A stamp that cannot be written costs the fetch nothing: the mirror then
    looks as old as its last stamped use or git write, and clean keeps it that long."""
    try:
        mirroruse.mark(mirror)
    except OSError as error:
        emit(name, f"cannot record this use of {mirror} ({error.strerror or error}): "
                   f"`clean --cache` elsewhere may take it for unused")


def check_out(
    *,
    name: str,
    mirror: Path,
    path: Path,
    commit: str,
    tag: tuple[str, str] | None,
    emit: Emit,
    fresh: bool = False,
) -> None:
    """Check ``commit`` out at ``path``, detached, identical to the commit. ``tag`` is
    (name, object id) to recreate in the checkout, so that `git describe` in a build
    sees the release tag. ``fresh`` discards the checkout first. Raises
    ``CorruptObjectsError`` when objects cannot be read, in the checkout or in the
    mirror it fetches from."""
    with locked(path.parent / ".locks" / f"{path.name}.lock", name, emit):
        if fresh and os.path.lexists(path):
            emit(name, f"discarding checkout {path}")
            discard(path)
        git_dir, new = _ensure_worktree(path, name, emit)
        # A checkout made just now holds nothing: no object to look for, nothing to clean.
        present = not new and has_commit(git_dir, commit)
        wanted = commit
        if tag is not None:
            tag_ref, tag_object = f"refs/tags/{tag[0]}", tag[1]
            present = present and rev_parse(git_dir, tag_ref) == tag_object
            wanted = f"+{tag_object}:{tag_ref}"
        # A new checkout of a mirror that holds one pack takes that pack as is (git index-pack
        # checks every object as a fetch would), without a fetch's three other processes.
        copied = new and not fresh and _copy_pack(mirror, git_dir, name, tag)
        if not present and not copied:
            fetch = ["fetch", "--quiet", "--depth", "1", "--no-tags", "--"]
            _from_mirror(run([*fetch, mirror.as_uri(), wanted], git_dir=git_dir), name, mirror)
        # Clean before the checkout too: git checkout reads a directory's .gitattributes from
        # the work tree when the index has none there, so one a build left (eol=crlf, ident,
        # working-tree-encoding) would convert the files checked out. -ff also removes
        # nested repositories that an earlier build left behind.
        if not new:
            must(run(["clean", "-ffdxq"], git_dir=git_dir, work_tree=path, cwd=path), name)
        checked_out = run(["checkout", "--quiet", "--force", "--detach", commit], git_dir=git_dir, work_tree=path,
                          cwd=path)
        if copied and not checked_out.ok:  # the mirror's pack lacked something: fetch afresh
            raise CorruptObjectsError(name, mirror, gitcmd.trimmed(checked_out.stderr))
        must(checked_out, name)
        if not new:
            must(run(["clean", "-ffdxq"], git_dir=git_dir, work_tree=path, cwd=path), name)
        if not head_is(git_dir, commit):
            head = must(run(["rev-parse", "--verify", "--quiet", "HEAD"], git_dir=git_dir), name)
            raise SourceError(f"{name}: {path} is at {head.stdout.strip()} after checking out {commit}")


MAX_COPIED_PACK = 256 * 1024 * 1024


def _copy_pack(mirror: Path, git_dir: Path, name: str, tag: tuple[str, str] | None) -> bool:
    """Give the new checkout at ``git_dir`` the objects of a shallow mirror that holds them
    as one pack (what a first fetch into a mirror leaves): the pack goes through ``git
    index-pack``, which hashes every object as a fetch's receiving end would (the mirror
    is not trusted), with the mirror's shallow boundary and the tag. False, having
    changed nothing, when the mirror holds anything else: then the checkout fetches."""
    objects = mirror / "objects"
    try:
        if any(len(entry) == 2 for entry in os.listdir(objects)):  # loose objects: fetch
            return False
        packs = [entry for entry in os.listdir(objects / "pack") if entry.endswith(".pack")]
        if len(packs) != 1:
            return False
        # Only a shallow mirror's pack: a full history (a server that refused a shallow
        # fetch) is cheaper to fetch from, one commit deep, than to index whole.
        shallow = read_limited(mirror / "shallow", limit=1 << 20, follow=False)
        data = read_limited(objects / "pack" / packs[0], limit=MAX_COPIED_PACK, follow=False)
    except OSError:
        return False
    if not shallow.strip():
        return False
    indexed = run(["index-pack", "--stdin"], git_dir=git_dir, stdin=data)
    if not indexed.ok:
        raise CorruptObjectsError(name, mirror, gitcmd.trimmed(indexed.stderr))
    (git_dir / "shallow").write_bytes(shallow)
    if tag is not None:
        ref = git_dir / "refs" / "tags" / tag[0]
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(tag[1] + "\n")
    return True



def _from_mirror(result: GitResult, name: str, mirror: Path) -> None:
    """A checkout's fetch from the mirror failed: the mirror's pin said the objects are
    there, so one it cannot read or send (or a mirror that vanished) is damage."""
    if result.ok:
        return
    kind = gitcmd.classify(result.stderr, result.status)
    if kind in ("corrupt", "refused", "missing-ref", "no-repository"):
        raise CorruptObjectsError(name, mirror, gitcmd.trimmed(result.stderr))
    must(result, name)


def _ensure_worktree(path: Path, name: str, emit: Emit) -> tuple[Path, bool]:
    """The checkout's git directory, made if need be; and whether it was made just now."""
    _remove_leftovers(path.parent, path.name, name, emit)
    trusted = _trusted(path / ".git", repoconfig.CHECKOUT, name, emit)
    if path.exists() and not (trusted and _is_repo(path / ".git")):
        emit(name, f"discarding damaged checkout {path}")
        discard(path)
    if not path.exists():
        path.mkdir(parents=True)
        repoconfig.init(path / ".git", repoconfig.CHECKOUT)
        return path / ".git", True
    _clear_stale_locks(path / ".git", name, emit)
    return path / ".git", False


def _is_repo(git_dir: Path) -> bool:
    """``git_dir`` is a repository as git recognises one: a HEAD that is a ref or an
    object id, objects/ and refs/. Read from disk: the caller has checked that its
    config, which says whether it is bare, is the one we wrote (``_trusted``), so no git
    process is needed. (Not GitPython either: it reads GIT_* variables from os.environ.)"""
    try:
        objects, refs = os.lstat(git_dir / "objects"), os.lstat(git_dir / "refs")
        head = read_limited(git_dir / "HEAD", limit=4096, follow=False)
    except OSError:
        return False
    valid_head = _HEAD.fullmatch(head) is not None
    return valid_head and stat.S_ISDIR(objects.st_mode) and stat.S_ISDIR(refs.st_mode)


def _trusted(git_dir: Path, expected: bytes, name: str, emit: Emit) -> bool:
    """False, and says why, when someone else wrote git_dir's config (see repoconfig);
    when True, the config holds ``expected``'s very bytes."""
    problem = repoconfig.trust(git_dir, expected)
    if problem is not None:
        emit(name, f"not trusting {git_dir}: {problem}")
    return problem is None


def _clear_stale_locks(git_dir: Path, name: str, emit: Emit) -> None:
    for stale in [*git_dir.glob("*.lock"), *(git_dir / "refs").rglob("*.lock")]:
        stale.unlink(missing_ok=True)
        emit(name, f"removed {stale.relative_to(git_dir)} left by an interrupted run")


def _remove_leftovers(parent: Path, stem: str, name: str, emit: Emit) -> None:
    # "~" cannot occur in repo or mirror names, so no other entry's leftovers match.
    for leftover in parent.glob(f".tmp~{stem}~*"):
        shutil.rmtree(leftover, ignore_errors=True)
        emit(name, f"removed {leftover.name} left by an interrupted run")


def discard(path: Path) -> None:
    """Remove the mirror or checkout at ``path`` (its lock must be held)."""
    # Rename first: a deletion interrupted halfway must not leave a half-deleted
    # directory at the path a later run reuses.
    doomed = Path(tempfile.mkdtemp(prefix=f".tmp~{path.name}~", dir=path.parent))
    os.rename(path, doomed / "old")
    gitcommits.forget(path)
    gitcommits.forget(path / ".git")
    shutil.rmtree(doomed, ignore_errors=True)
