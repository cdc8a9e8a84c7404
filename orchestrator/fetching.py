"""From the run's settings to the sources layer: which repositories, how many at a
time, and whether they are checked out now or when first built.

Apart from ``orchestrator.release`` so that `fetch` loads only what fetching needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from orchestrator.manifest import Manifest
from orchestrator.outputs import Source
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.sourceref import FetchOptions, RepoSource, Resolved

# A fetch waits on the network and on git's own processes far more than it computes:
# many overlap well on few cores. Bounded, so that a 5,000-repo manifest does not open
# 5,000 connections to one server at once.
FETCHES_PER_CORE = 4
MIN_FETCH_JOBS, MAX_FETCH_JOBS = 8, 32


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_jobs() -> int:
    """Build steps at once: one per core, at most 8."""
    return max(1, min(cores(), 8))


def fetch_jobs(settings: Settings) -> int:
    """Repositories fetched at once: ``--jobs`` when given, else 4 per core (8 to 32)."""
    return settings.jobs or max(MIN_FETCH_JOBS, min(FETCHES_PER_CORE * cores(), MAX_FETCH_JOBS))


def repos_to_fetch(manifest: Manifest, names: Sequence[str], *, everything: bool) -> list[str]:
    """``--all``: every repository of the manifest, artifacts or not. Names: each named
    repository, and the repositories of what a named artifact (or a named repository's
    artifacts) needs to be built."""
    from orchestrator.plan import make_plan

    if everything:
        make_plan(manifest, names, everything=True)  # refuses names given with --all
        return list(manifest.repos)
    bare = {n for n in names if n in manifest.repos and not manifest.repos[n].artifacts}
    needed = make_plan(manifest, [n for n in names if n not in bare]).repos if set(names) - bare else ()
    return list(dict.fromkeys([*(n for n in names if n in manifest.repos), *needed]))


def fetch_options(settings: Settings, *, refresh: bool = False) -> FetchOptions:
    """The sources layer's options from the run's settings. ``refresh`` asks every
    remote even when the mirror could answer (locking and verifying pins)."""
    from orchestrator import sourceref

    return sourceref.FetchOptions(
        cache_dir=settings.cache_dir or sourceref.default_cache_dir(),
        checkout_dir=settings.build_dir / "src",
        jobs=fetch_jobs(settings),
        offline=settings.offline,
        mirrors=settings.mirrors,
        retries=settings.retries,
        refresh=refresh and not settings.offline,
    )


def fetch_sources(manifest: Manifest, repo_names: Sequence[str], settings: Settings,
                  on_progress: Callable[[str, str], None] | None = None, *, lazy: bool = False) -> dict[str, Source]:
    """Every repo named, its pin verified in the mirror (fetching as needed).

    Eager: each is checked out now. ``lazy``: a repo is checked out only when one of
    its artifacts is really built, so a fully cached release touches no checkout.

    Repos whose checkout stamp answers (``orchestrator.checkoutstamp``) are taken first,
    one after the other: no thread, no git, not even the git machinery's import. The
    others go to ``orchestrator.sources``, in parallel.
    """
    options = fetch_options(settings)
    repos = [manifest.repos[name] for name in repo_names]
    checkouts = options.checkout_dir.absolute()
    warm = _warm(repos, options, on_progress, check_tree=not lazy)
    found: dict[str, Source] = {}
    rest = [repo for repo in repos if repo.name not in warm]
    if rest:
        from orchestrator import sources
        from orchestrator.fetchrun import FetchFailed

        try:
            if lazy:
                for name, r in sources.pin_all(rest, options, on_event=on_progress).items():
                    found[name] = Source(repo=name, url=r.url, ref=r.ref, commit=r.commit, commit_time=r.commit_time,
                                         path=checkouts / name, prepare=_checkout(r, options, on_progress))
            else:
                for name, c in sources.fetch(rest, options, on_event=on_progress).items():
                    found[name] = Source(repo=name, url=c.url, ref=c.ref, commit=c.commit,
                                         commit_time=c.commit_time, path=c.path)
        except FetchFailed as failed:
            raise FetchFailed(failed.failures, total=len(repos)) from None
    for name, r in warm.items():
        found[name] = Source(repo=name, url=r.url, ref=r.ref, commit=r.commit, commit_time=r.commit_time,
                             path=checkouts / name, prepare=_checkout(r, options, on_progress) if lazy else None)
    return {repo.name: found[repo.name] for repo in repos}


def _warm(repos: Sequence[RepoSource], options: FetchOptions, on_progress: Callable[[str, str], None] | None, *,
          check_tree: bool) -> dict[str, Resolved]:
    """The repos their checkout stamps answer for (and, with ``check_tree``, whose
    checkouts are untouched), said as the sources layer says it."""
    from orchestrator import checkoutstamp
    from orchestrator.errors import OrchestratorError
    from orchestrator.sourceref import prepare

    found: list[tuple[Resolved, list[str]]] = []
    for repo in repos:
        try:
            source = prepare(repo, options)
        except OrchestratorError:
            continue  # the sources layer reports it, with every other failure
        warm = checkoutstamp.resolved(source, options)
        if warm is not None:
            found.append(warm)
    if check_tree and found:
        # Walking the checkouts is mostly lstat calls, which release the GIL: four
        # threads overlap them (measured: 60-74 ms alone, 40-50 ms so, 8 checkouts on 2 cores).
        left = checkoutstamp.left_behind(options.checkout_dir.absolute())
        with ThreadPoolExecutor(max_workers=min(len(found), 4), thread_name_prefix="stamp") as pool:
            kept = list(pool.map(lambda warm: checkoutstamp.intact(warm[0], options, left), found))
        found = [warm for warm, intact in zip(found, kept, strict=True) if intact]
    answered: dict[str, Resolved] = {}
    for resolved, said in found:
        if on_progress is not None:
            for message in said:
                on_progress(resolved.name, message)
        answered[resolved.name] = resolved
    return answered


def _checkout(resolved: Resolved, options: FetchOptions,
              on_progress: Callable[[str, str], None] | None) -> Callable[[], None]:
    """Check ``resolved`` out when one of its artifacts is really built."""
    def prepare() -> None:
        from orchestrator import sources

        sources.check_out_resolved(resolved, options, on_event=on_progress)

    return prepare
