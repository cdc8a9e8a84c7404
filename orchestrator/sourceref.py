"""What a repository of the manifest becomes before git sees it: checked (no name, URL
or ref that could make git run a command), its URL rewritten for mirrors, its mirror's
place in the cache; and the records of it the sources layer passes around.

Light on purpose: the warm path (``orchestrator.fetching``, ``orchestrator.checkoutstamp``)
needs all of this and none of the git machinery of ``orchestrator.sources``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from orchestrator.errors import InputError, PinError
from orchestrator.gitinput import COMMIT, ref_problem, url_problem
from orchestrator.redact import redact

RefKind = Literal["tag", "branch", "commit"]

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
class RepoRef:
    """A repo, validated, with the URL git uses and its mirror's path."""

    name: str
    url: str  # the manifest URL, redacted: the only form that reaches a message
    shown: str  # url, plus the redacted mirror URL when one is used
    git_url: str = field(repr=False)  # what git contacts; may hold credentials: never displayed
    ref: str
    pin: str | None
    mirror: Path


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
    return redact(url)


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


def prepare(repo: RepoSource, options: FetchOptions) -> RepoRef:
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
