"""Git sources: one bare mirror per URL in a cache, one pinned checkout per repo.

Per repo: refuse a name, URL or ref that could make git run a command, before git
runs (``orchestrator.sourceref``); when the checkout's stamp answers, take the ref's
resolution and the checkout from it without git (``orchestrator.checkoutstamp``);
else resolve the ref to a commit and check the pin (``orchestrator.refs``, under the
mirror's lock), check the commit out (``orchestrator.gitcache``) and stamp it. Repos
run in parallel; failures are collected and raised together. Git itself is reached
only through ``orchestrator.gitcmd``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator import checkoutstamp, gitcmd, gitcommits
from orchestrator.errors import SourceError
from orchestrator.fetchrun import FetchFailed, run_all
from orchestrator.gitcache import Emit, check_out
from orchestrator.gitfailure import (
    CorruptObjectsError,
    GitCommandError,
    NoSpaceError,
    RemoteAccessError,
    RemoteError,
    RepositoryNotFoundError,
    UnreachableRemoteError,
)
from orchestrator.refs import (
    AbbreviatedCommitError,
    CommitNotFoundError,
    MovedRefError,
    NotCachedError,
    RefNotFoundError,
    pin,
    refetch,
)
from orchestrator.sourceref import (
    FetchOptions,
    PinConflictError,
    RepoRef,
    RepoSource,
    Resolved,
    UnsafeSourceError,
    default_cache_dir,
    mirror_name,
    prepare,
    redact_url,
)

__all__ = [
    "AbbreviatedCommitError",
    "Checkout",
    "CommitNotFoundError",
    "CorruptObjectsError",
    "FetchFailed",
    "FetchOptions",
    "GitCommandError",
    "MovedRefError",
    "NoSpaceError",
    "NotCachedError",
    "PinConflictError",
    "RefNotFoundError",
    "RemoteAccessError",
    "RemoteError",
    "RepoRef",
    "RepoSource",
    "Resolved",
    "RepositoryNotFoundError",
    "UnreachableRemoteError",
    "UnsafeSourceError",
    "default_cache_dir",
    "fetch",
    "mirror_name",
    "redact_url",
    "resolve",
]

EventHandler = Callable[[str, str], None]

@dataclass(frozen=True, slots=True, kw_only=True)
class Checkout:
    """One repo checked out, detached, at its pinned commit."""

    name: str
    url: str  # the manifest URL with any credentials removed
    ref: str
    commit: str
    commit_time: int  # committer time, unix seconds: the SOURCE_DATE_EPOCH of builds
    path: Path
    fetched: bool  # False when the mirror answered without any network step


def pin_all(
    repos: Sequence[RepoSource],
    options: FetchOptions,
    *,
    on_event: EventHandler | None = None,
) -> dict[str, Resolved]:
    """Fetch every repo into its mirror as needed and verify its pin; no checkout.

    Raises ``FetchFailed`` naming every repo that failed, before anything is built.
    """
    emit = _emitter(on_event)
    return run_all(repos, options.jobs, lambda repo: _resolve_one(repo, options, emit))


def _resolve_one(repo: RepoSource, options: FetchOptions, emit: Emit) -> Resolved:
    source = prepare(repo, options)
    warm = checkoutstamp.resolved(source, options)
    if warm is not None:  # the mirror's ref is as stamped: no git started
        for message in warm[1]:
            emit(source.name, message)
        return warm[0]
    pinned = pin(source, options, emit)
    return Resolved(
        name=source.name,
        url=source.url,
        ref=source.ref,
        commit=pinned.commit,
        commit_time=commit_time(source.mirror, pinned.commit, source.name),
        fetched=pinned.fetched,
        mirror=source.mirror,
        tag=(source.ref, pinned.target) if pinned.kind == "tag" else None,
        source=source,
        kind=pinned.kind,
        target=pinned.target,
    )


def check_out_resolved(resolved: Resolved, options: FetchOptions, *,
                       on_event: EventHandler | None = None) -> Checkout:
    """Check a resolved repo out at ``checkout_dir/<name>``, detached and clean.

    Damaged objects are repaired: first with a fresh checkout (cheap, local), then, if
    the mirror it fetches from is what is damaged, by fetching the mirror anew (once).
    """
    emit = _emitter(on_event)
    path = options.checkout_dir.absolute() / resolved.name
    done = Checkout(name=resolved.name, url=resolved.url, ref=resolved.ref, commit=resolved.commit,
                    commit_time=resolved.commit_time, path=path, fetched=resolved.fetched)
    if resolved.stamp is not None and checkoutstamp.untouched(
            path, resolved.stamp, commit=resolved.commit, tag=resolved.tag,
            left=checkoutstamp.left_behind(options.checkout_dir.absolute())):
        return done  # at its pin and untouched since git made it so: no git started
    checkoutstamp.forget(options.checkout_dir, resolved.name)

    def attempt(fresh: bool) -> None:
        check_out(name=resolved.name, mirror=resolved.mirror, path=path, commit=resolved.commit,
                  tag=resolved.tag, emit=emit, fresh=fresh)

    try:
        attempt(fresh=False)
    except CorruptObjectsError as damage:
        emit(resolved.name, f"damaged git objects in {damage.where} ({damage.summary}): checking out afresh")
        try:
            attempt(fresh=True)
        except CorruptObjectsError as again:
            pinned = refetch(resolved.source, options, emit, again)
            if pinned.commit != resolved.commit:
                raise SourceError(f"{resolved.name}: {resolved.ref} moved to {pinned.commit} while its damaged "
                                  f"mirror was fetched again (it was {resolved.commit})",
                                  hint="run again to build the new commit, or pin `commit:`") from again
            try:
                attempt(fresh=True)
            except CorruptObjectsError as still:
                raise still.after_repair() from still
    source = resolved.source
    checkoutstamp.record(name=resolved.name, url=resolved.url, git_url=source.git_url, ref=resolved.ref,
                         pin=source.pin, kind=resolved.kind, target=resolved.target, commit=resolved.commit,
                         commit_time=resolved.commit_time, tag=resolved.tag, mirror=resolved.mirror,
                         cache_dir=options.cache_dir, checkout_dir=options.checkout_dir)
    return done


def commit_time(git_dir: Path, commit: str, name: str) -> int:
    """The committer time of ``commit`` (SOURCE_DATE_EPOCH), read from the mirror."""
    stamp = gitcommits.commit_timestamp(git_dir, commit)
    if stamp is None:
        raise SourceError(f"{name}: cannot read the time of commit {commit} in {git_dir}",
                          hint="delete the mirror to have it fetched again")
    return stamp


def fetch(
    repos: Sequence[RepoSource],
    options: FetchOptions,
    *,
    on_event: EventHandler | None = None,
) -> dict[str, Checkout]:
    """Fetch every repo into its mirror and check it out, detached, at its commit.

    Runs ``options.jobs`` repos at a time; ``on_event(repo, message)`` gets progress
    lines, from worker threads. Raises ``FetchFailed`` naming every repo that failed;
    a repo that failed is not checked out.
    """
    emit = _emitter(on_event)

    def one(repo: RepoSource) -> Checkout:
        return check_out_resolved(_resolve_one(repo, options, emit), options, on_event=on_event)

    return run_all(repos, options.jobs, one)


def resolve(
    repos: Sequence[RepoSource],
    options: FetchOptions,
    *,
    on_event: EventHandler | None = None,
) -> dict[str, str]:
    """The commit each repo's ref resolves to, fetched into the mirror (no checkout).

    Same cache rules as ``fetch``: a tag already in the mirror is not asked for
    again; set ``refresh=True`` in the options to ask every remote.
    """
    emit = _emitter(on_event)

    def one(repo: RepoSource) -> str:
        return pin(prepare(repo, options), options, emit).commit

    return run_all(repos, options.jobs, one)


def _emitter(on_event: EventHandler | None) -> Emit:
    def emit(name: str, message: str) -> None:
        if on_event is not None:
            on_event(name, gitcmd.redact(message))

    return emit


_prepare = prepare  # the name tests and older callers use
