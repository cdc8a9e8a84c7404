"""Ref resolution: what commit a repo's ref names, answered from its mirror when
nothing can have changed, else from the remote, and checked against the pin.

Runs under the mirror's lock (taken here). A tag already in the mirror is trusted
without asking the remote (tags are meant not to move, and a pin catches one that
did on the next real fetch); an unpinned branch always asks, except offline.

The mirror cache is not trusted to be intact: objects that a ref of the mirror (or a
fetch that just succeeded) says are there, but cannot be read, are damage, not a
missing ref. The mirror is then discarded and fetched again, once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator import gitcmd, gitcommits, gitcreds, refstore
from orchestrator.errors import OrchestratorError, PinError, SourceError
from orchestrator.gitcache import Emit, discard, ensure_mirror, locked
from orchestrator.gitfailure import CorruptObjectsError
from orchestrator.gitinput import COMMIT
from orchestrator.sourceref import RefKind, RepoRef

_SHORT_SHA = re.compile(r"[0-9a-fA-F]{7,39}")
_PIN_NS = "refs/orchestrator/commits/"
_ALL_REFS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


class Policy(Protocol):
    """How remotes are reached: the part of ``sources.FetchOptions`` used here."""

    @property
    def offline(self) -> bool: ...
    @property
    def refresh(self) -> bool: ...
    @property
    def retries(self) -> int: ...
    @property
    def backoff(self) -> float: ...


class RefNotFoundError(PinError):
    """The remote has no tag or branch of that name."""

    def __init__(self, name: str, ref: str, url: str) -> None:
        super().__init__(
            f"{name}: ref {ref!r} not found in {url}",
            hint="check the tag/branch name (git ls-remote lists them)",
        )
        self.name, self.ref, self.url = name, ref, url

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}"


class AbbreviatedCommitError(PinError):
    """A short hex ref that is no tag or branch: git cannot fetch by abbreviated id."""

    def __init__(self, name: str, ref: str, url: str) -> None:
        super().__init__(
            f"{name}: ref {ref!r} looks like an abbreviated commit id and is no tag or "
            f"branch in {url}; servers only hand out commits by their full id",
            hint=f"pin the full 40-hex commit (`git rev-parse {ref}` in a clone prints it)",
        )
        self.name, self.ref = name, ref


class CommitNotFoundError(PinError):
    """A commit pinned as the ref that the server does not have (or does not offer)."""

    def __init__(self, name: str, commit: str, url: str) -> None:
        super().__init__(
            f"{name}: commit {commit} not found in {url}",
            hint="check the id; a commit on no branch or tag cannot be fetched from most "
            "servers, so pin a tag or branch that contains it",
        )
        self.name, self.commit = name, commit


class MovedRefError(PinError):
    """The ref resolves to another commit than the manifest pins (e.g. the tag moved)."""

    def __init__(self, name: str, kind: str, ref: str, url: str, *, expected: str, actual: str) -> None:
        what = "the tag moved" if kind == "tag" else f"the {kind} moved"
        super().__init__(
            f"{name}: {kind} {ref!r} in {url} is at {actual}, but the manifest pins {expected} ({what})",
            hint="if the new commit is intended, update `commit:` (invoke manifest "
            "--lock); otherwise find out why upstream re-pointed it before building",
        )
        self.name, self.ref = name, ref
        self.expected, self.actual = expected, actual


class NotCachedError(SourceError):
    """``offline`` was asked for, but the mirror cannot answer for this repo."""

    def __init__(self, name: str, url: str, detail: str) -> None:
        super().__init__(
            f"{name}: offline, and {detail} (mirror of {url})",
            hint="run once without --offline to fill the cache",
        )
        self.name = name


@dataclass(frozen=True, slots=True, kw_only=True)
class Pinned:
    """What a ref resolved to, and whether the network was needed to find out."""

    kind: RefKind
    target: str  # what the ref names: an annotated tag's object, else the commit
    commit: str
    fetched: bool


def pin(source: RepoRef, options: Policy, emit: Emit) -> Pinned:
    """Resolve ``source.ref`` in its mirror (fetching as needed) and check the pin.

    Raises a ``PinError`` subclass for a missing, abbreviated or moved ref, a
    ``RemoteError`` when the remote fails, ``NotCachedError`` offline, and
    ``CorruptObjectsError`` when the mirror is still damaged after fetching it anew.
    """
    with locked(_lock_of(source), source.name, emit):
        ensure_mirror(source.mirror, source.name, emit)
        try:
            return _pin(source, options, emit)
        except CorruptObjectsError as damage:
            return _rebuild(source, options, emit, damage)


def refetch(source: RepoRef, options: Policy, emit: Emit, damage: CorruptObjectsError) -> Pinned:
    """Discard the mirror, found ``damage``d outside its lock (a checkout fetching from
    it), fetch the ref again and check the pin."""
    with locked(_lock_of(source), source.name, emit):
        return _rebuild(source, options, emit, damage)


def _lock_of(source: RepoRef) -> Path:
    return source.mirror.with_name(source.mirror.name + ".lock")


def _rebuild(source: RepoRef, options: Policy, emit: Emit, damage: CorruptObjectsError) -> Pinned:
    if options.offline:
        raise NotCachedError(source.name, source.url, f"its mirror is damaged ({damage.summary})") from damage
    emit(source.name, f"damaged git objects in {damage.where} ({damage.summary}): "
                      f"discarding the mirror and fetching again")
    if os.path.lexists(source.mirror):
        discard(source.mirror)
    ensure_mirror(source.mirror, source.name, emit)
    try:
        return _from_remote(source, options, emit)
    except CorruptObjectsError as again:
        raise again.after_repair() from again


def _pin(source: RepoRef, options: Policy, emit: Emit) -> Pinned:
    found = _lookup(source)
    if options.offline or not options.refresh:
        cached = _from_cache(source, found, offline=options.offline, emit=emit)
        if cached is not None:
            return cached
    if options.offline:
        if found is None:
            detail = f"{source.ref} is not in the cache"
        else:
            detail = f"the cached {found[0]} {source.ref} is at {found[2]}, not the pinned {source.pin}"
        raise NotCachedError(source.name, source.url, detail)
    return _from_remote(source, options, emit)


def _lookup(source: RepoRef) -> tuple[RefKind, str, str] | None:
    """What the mirror knows about the ref already: (kind, target, commit)."""
    if COMMIT.fullmatch(source.ref):
        held = _read_ref(source.mirror, f"{_PIN_NS}{source.ref}") is not None
        found = _commit_of(source, source.ref, missing_is_damage=held, unwalkable_is_damage=False)
        return ("commit", source.ref, source.ref) if found == source.ref else None
    kinds: tuple[RefKind, ...] = ("tag", "branch")
    for kind in kinds:
        target = _read_ref(source.mirror, _refname(kind, source.ref))
        commit = _commit_of(source, target, missing_is_damage=True, unwalkable_is_damage=False) if target else None
        if target and commit:
            return kind, target, commit
    return None


def _read_ref(mirror: Path, refname: str) -> str | None:
    """What ``refname`` holds in the mirror: read from its files, or asked of git when
    only git can tell (refstore)."""
    try:
        return refstore.read(mirror, refname)
    except refstore.Unknown:
        return gitcommits.rev_parse(mirror, refname)


def _commit_of(source: RepoRef, rev: str, *, missing_is_damage: bool, unwalkable_is_damage: bool) -> str | None:
    """The commit ``rev`` names in the mirror, with a walkable history; else None.

    Objects git reports damaged always raise ``CorruptObjectsError``. A missing object
    does too when a ref of the mirror (or a fetch that succeeded) vouches for it; an
    unwalkable history (parents neither present nor cut off by .git/shallow: a fetch
    killed midway) when a fetch should just have made it whole.
    """
    mirror = source.mirror
    # The usual answer in one git process: peeled, walkable, and its time (remembered).
    quick = gitcmd.run(["rev-list", "--max-count=1", "--timestamp", f"{rev}^{{commit}}"], git_dir=mirror)
    when, _, commit = quick.stdout.strip().partition(" ")
    if quick.ok and when.isdigit() and COMMIT.fullmatch(commit):
        gitcommits.remember(mirror, commit, int(when))
        return commit
    # Something is off: tell a missing ref, a missing object and damage apart, step by step.
    peeled = gitcmd.run(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], git_dir=mirror)
    if not peeled.ok:
        _raise_if_damaged(source, peeled)
        # Peeling fails silently on a missing object and on a tag of a tree: `^{}` peels
        # through every tag to whatever object is at the end, if it is there.
        if not missing_is_damage or gitcommits.rev_parse(mirror, f"{rev}^{{}}") is not None:
            return None
        raise CorruptObjectsError(source.name, mirror, f"{rev} names objects that are missing from the mirror")
    commit = peeled.stdout.strip()
    if gitcommits.commit_timestamp(mirror, commit, check=lambda walk: _raise_if_damaged(source, walk)) is not None:
        return commit
    if unwalkable_is_damage:
        raise CorruptObjectsError(source.name, mirror, f"the history of {commit} cannot be read after fetching it")
    return None


def _raise_if_damaged(source: RepoRef, result: gitcmd.GitResult) -> None:
    if gitcmd.classify(result.stderr, result.status) == "corrupt":
        raise CorruptObjectsError(source.name, source.mirror, gitcmd.trimmed(result.stderr))


def _from_cache(source: RepoRef, found: tuple[RefKind, str, str] | None, *, offline: bool, emit: Emit) -> Pinned | None:
    if found is None:
        return None
    kind, target, commit = found
    if source.pin is not None and commit != source.pin:
        return None
    if kind == "branch" and source.pin is None:
        # An unpinned branch moves: only an offline run may take the cached one.
        if not offline:
            return None
        emit(
            source.name,
            f"offline: using cached branch {source.ref} at {commit[:12]}, which may be behind the remote",
        )
    emit(source.name, "cached, no network")
    return Pinned(kind=kind, target=target, commit=commit, fetched=False)


def _from_remote(source: RepoRef, options: Policy, emit: Emit) -> Pinned:
    emit(source.name, f"fetching {source.ref} from {source.shown}")
    kind: RefKind
    if COMMIT.fullmatch(source.ref):
        kind, full = "commit", f"{_PIN_NS}{source.ref}"
        # The pin ref keeps the commit reachable, so gc in the mirror cannot drop it.
        _fetch(source, options, emit, (f"+{source.ref}:{full}",), fallback=_ALL_REFS)
        # Missing after a fetch that worked: the server does not have it (or hides it).
        if _commit_of(source, source.ref, missing_is_damage=False, unwalkable_is_damage=True) != source.ref:
            raise CommitNotFoundError(source.name, source.ref, source.shown)
        # The full-fetch fallback brings the commit but does not write the pin ref.
        gitcmd.must(gitcmd.run(["update-ref", full, source.ref], git_dir=source.mirror), source.name)
    elif source.pin is not None:
        # Pinned: whatever the remote says, the pin decides, so fetch at once (one round
        # trip) rather than list the remote's refs first. A tag wins over a branch of
        # the same name, as in `git rev-parse`.
        kind, full = _fetch_pinned(source, options, emit)
    else:
        kind, advertised = _ls_remote(source, options, emit)
        full = _refname(kind, source.ref)
        current = _read_ref(source.mirror, full)
        usable = current == advertised and _commit_of(
            source, advertised, missing_is_damage=True, unwalkable_is_damage=False) is not None
        if not usable:
            _fetch(source, options, emit, (f"+{full}:{full}",), fallback=None)
    target = _read_ref(source.mirror, full)
    commit = _commit_of(source, target, missing_is_damage=True, unwalkable_is_damage=True) if target else None
    if target is None or commit is None:
        raise RefNotFoundError(source.name, source.ref, source.shown)
    if source.pin is not None and commit != source.pin:
        raise MovedRefError(source.name, kind, source.ref, source.shown, expected=source.pin, actual=commit)
    return Pinned(kind=kind, target=target, commit=commit, fetched=True)


def _fetch_pinned(source: RepoRef, options: Policy, emit: Emit) -> tuple[RefKind, str]:
    """Fetch the ref as a tag, else as a branch: (its kind, its full name)."""
    kinds: tuple[RefKind, ...] = ("tag", "branch")
    for kind in kinds:
        full = _refname(kind, source.ref)
        try:
            _fetch(source, options, emit, (f"+{full}:{full}",), fallback=None)
        except RefNotFoundError:
            continue
        return kind, full
    if _SHORT_SHA.fullmatch(source.ref):
        raise AbbreviatedCommitError(source.name, source.ref, source.shown)
    raise RefNotFoundError(source.name, source.ref, source.shown)


def _ls_remote(source: RepoRef, options: Policy, emit: Emit) -> tuple[RefKind, str]:
    tag, branch = _refname("tag", source.ref), _refname("branch", source.ref)
    args = ["ls-remote", "--", _remote(source).url, tag, branch]
    result = _network(source, options, emit, args)
    if not result.ok:
        raise _remote_failure(source, result)
    advertised = {refname: sha for sha, _, refname in (line.partition("\t") for line in result.stdout.splitlines())}
    # A name that is both a tag and a branch means the tag, as in `git rev-parse`.
    if tag in advertised:
        return "tag", advertised[tag]
    if branch in advertised:
        return "branch", advertised[branch]
    if _SHORT_SHA.fullmatch(source.ref):
        raise AbbreviatedCommitError(source.name, source.ref, source.shown)
    raise RefNotFoundError(source.name, source.ref, source.shown)


def _fetch(
    source: RepoRef,
    options: Policy,
    emit: Emit,
    refspecs: tuple[str, ...],
    *,
    fallback: tuple[str, ...] | None,
) -> None:
    """Shallow fetch of ``refspecs``; a full fetch of ``fallback`` (or the same
    refspecs) when the server refuses the shallow one or the request by commit id."""
    base = ["fetch", "--quiet", "--no-tags"]
    url = _remote(source).url
    args = [*base, "--depth", "1", "--", url, *refspecs]
    shallow = _network(source, options, emit, args)
    if shallow.ok:
        return
    if gitcmd.classify(shallow.stderr, shallow.status) != "refused":
        raise _remote_failure(source, shallow)
    emit(source.name, "shallow fetch refused, falling back to full fetch")
    args = [*base, "--", url, *(fallback or refspecs)]
    full = _network(source, options, emit, args)
    if not full.ok:
        raise _remote_failure(source, full)


def _network(source: RepoRef, options: Policy, emit: Emit, args: list[str]) -> gitcmd.GitResult:
    def on_retry(attempt: int, delay: float, result: gitcmd.GitResult) -> None:
        first = gitcmd.trimmed(result.stderr, lines=1) or f"exit code {result.status}"
        total = options.retries + 1
        emit(source.name, f"retrying in {delay:g}s (try {attempt} of {total}): {first}")

    return gitcmd.run_network(
        args,
        git_dir=source.mirror,
        retries=options.retries,
        backoff=options.backoff,
        on_retry=on_retry,
        env=_remote(source).env,
    )


def _remote(source: RepoRef) -> gitcreds.Remote:
    """The URL for git's argv, credentials split off into its environment."""
    return gitcreds.remote(source.git_url, source.name)


def _remote_failure(source: RepoRef, result: gitcmd.GitResult) -> OrchestratorError:
    if gitcmd.classify(result.stderr, result.status) == "missing-ref":
        return RefNotFoundError(source.name, source.ref, source.shown)
    return gitcmd.remote_error(source.name, source.shown, result)


def _refname(kind: RefKind, ref: str) -> str:
    return f"refs/tags/{ref}" if kind == "tag" else f"refs/heads/{ref}"
