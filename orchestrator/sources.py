"""Git sources: one bare mirror per URL in a cache, one pinned checkout per repo.

Per repo: refuse a name, URL or ref that could make git run a command, before git
runs; resolve the ref to a commit and check the pin (``orchestrator.refs``, under the
mirror's lock); check the commit out (``orchestrator.gitcache``). Repos run in
parallel; failures are collected and raised together. Git itself is reached only
through ``orchestrator.gitcmd``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator import checkoutstamp, gitcmd, gitcommits
from orchestrator.errors import InputError, PinError, SourceError
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
from orchestrator.gitinput import COMMIT, ref_problem, url_problem
from orchestrator.refs import (
    AbbreviatedCommitError,
    CommitNotFoundError,
    MovedRefError,
    NotCachedError,
    RefKind,
    RefNotFoundError,
    RepoRef,
    pin,
    refetch,
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
    "RepoSource",
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

# One path component: the checkout directory .build/src/<name>.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class RepoSource(Protocol):
    """What the sources layer needs of a manifest repo."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def ref(self) -> str: ...
    @property
    def commit(self) -> str | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchOptions:
    """Where mirrors and checkouts live, and how remotes are reached."""

    cache_dir: Path
    checkout_dir: Path
    jobs: int = 1
    offline: bool = False
    mirrors: tuple[tuple[str, str], ...] = ()
    retries: int = 2
    backoff: float = 1.0
    # Ask the remote even when the mirror could answer: re-verifies pins upstream.
    refresh: bool = False


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


class UnsafeSourceError(InputError):
    """A repo name, URL or ref that git must never see (option injection, ext::)."""

    def __init__(self, name: str, what: str, value: str, why: str) -> None:
        super().__init__(f"{name}: refusing {what} {value!r}: {why}")
        self.name = name


class PinConflictError(PinError):
    """The manifest's ``ref`` and ``commit`` contradict each other or are malformed."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}", hint="pin the full 40-hex commit id")
        self.name = name


def redact_url(url: str) -> str:
    """``url`` without userinfo (``user:token@``), fit for messages and records."""
    return gitcmd.redact(url)


def default_cache_dir() -> Path:
    """The mirror cache: ``$ORCHESTRATOR_CACHE_DIR`` as is when set, else
    ``$XDG_CACHE_HOME/orchestrator/git``, else ``~/.cache/orchestrator/git``."""
    override = os.environ.get("ORCHESTRATOR_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative value.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "orchestrator" / "git"


def mirror_name(url: str) -> str:
    """Directory name of the mirror of ``url``: a readable tail plus a hash of the URL."""
    clean = redact_url(url).rstrip("/").removesuffix(".git")
    stem = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", clean)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[-60:].strip("._-")
    digest = hashlib.sha256(clean.encode()).hexdigest()[:12]
    return f"{slug or 'repo'}-{digest}.git"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """A repo whose pin is verified in its mirror, not (yet) checked out.

    Building asks for a checkout only when an artifact of the repo must really be
    built: a release whose artifacts are all cached touches no working tree.
    """

    name: str
    url: str  # the manifest URL, credentials removed
    ref: str
    commit: str
    commit_time: int
    fetched: bool
    mirror: Path
    tag: tuple[str, str] | None  # (tag name, tag object) to recreate in the checkout
    source: RepoRef  # to fetch it again should the mirror turn out damaged
    kind: RefKind
    target: str  # the object the ref names (an annotated tag's, else the commit)
    stamp: dict[str, Any] | None = None  # the checkout's stamp, when it answered without git


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
    source = _prepare(repo, options)
    stamp = checkoutstamp.pinned(name=source.name, url=source.url, git_url=source.git_url, ref=source.ref,
                                 pin=source.pin, mirror=source.mirror, cache_dir=options.cache_dir,
                                 checkout_dir=options.checkout_dir, offline=options.offline, refresh=options.refresh)
    if stamp is not None:  # the warm path: the mirror's ref is as stamped, no git started
        kind: RefKind = stamp["kind"]
        if kind == "branch" and source.pin is None:
            emit(source.name, f"offline: using cached branch {source.ref} at {stamp['commit'][:12]}, "
                              "which may be behind the remote")
        emit(source.name, "cached, no network")
        return Resolved(name=source.name, url=source.url, ref=source.ref, commit=stamp["commit"],
                        commit_time=stamp["commit_time"], fetched=False, mirror=source.mirror,
                        tag=(source.ref, stamp["target"]) if kind == "tag" else None, source=source, kind=kind,
                        target=stamp["target"], stamp=stamp)
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
    if resolved.stamp is not None and checkoutstamp.untouched(path, resolved.stamp, commit=resolved.commit,
                                                              tag=resolved.tag):
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
        return pin(_prepare(repo, options), options, emit).commit

    return run_all(repos, options.jobs, one)


def _emitter(on_event: EventHandler | None) -> Emit:
    def emit(name: str, message: str) -> None:
        if on_event is not None:
            on_event(name, gitcmd.redact(message))

    return emit


def _prepare(repo: RepoSource, options: FetchOptions) -> RepoRef:
    """Refuse what must never reach git's argv, and work out where things go."""
    name, ref = repo.name, repo.ref
    if not _NAME.fullmatch(name):
        raise UnsafeSourceError(name, "repo name", name, "it must be one path component")
    _check_url(name, repo.url, "URL")
    if problem := ref_problem(ref):
        raise UnsafeSourceError(name, "ref", ref, problem.what)
    expected = repo.commit.lower() if repo.commit is not None else None
    if expected is not None and not COMMIT.fullmatch(expected):
        raise PinConflictError(name, f"commit {repo.commit!r} is not a 40-hex commit id")
    if COMMIT.fullmatch(ref.lower()):
        ref = ref.lower()
        if expected is not None and expected != ref:
            raise PinConflictError(name, f"ref is commit {ref} but commit: is {expected}")
    git_url = _rewrite(repo.url, options.mirrors)
    url = redact_url(repo.url)
    shown = url
    if git_url != repo.url:
        _check_url(name, git_url, "mirror URL")
        shown = f"{url} (via {redact_url(git_url)})"
    mirror = options.cache_dir.absolute() / mirror_name(repo.url)
    return RepoRef(name=name, url=url, shown=shown, git_url=git_url, ref=ref, pin=expected, mirror=mirror)


def _check_url(name: str, url: str, what: str) -> None:
    if problem := url_problem(url):
        raise UnsafeSourceError(name, what, redact_url(url), problem.what)


def _rewrite(url: str, mirrors: Sequence[tuple[str, str]]) -> str:
    """Apply the longest matching mirror prefix (matched as written, or redacted)."""
    best: tuple[str, str, str] | None = None
    for old, new in mirrors:
        for candidate in (url, redact_url(url)):
            if old and candidate.startswith(old):
                if best is None or len(old) > len(best[0]):
                    best = (old, new, candidate)
                break
    if best is None:
        return url
    old, new, candidate = best
    return new + candidate[len(old) :]
