"""Running the repos of a fetch in parallel: every failure collected and reported
together, and everything stopped at once on Ctrl-C.

A worker thread cannot be interrupted; its git processes can. On KeyboardInterrupt
(Ctrl-C, or a SIGTERM/SIGHUP that the caller turns into one) ``gitcmd.cancel`` kills
every running git process group and lets no new one start, so the workers end
quickly, nothing is retried, and the caller gets ``Interrupted`` (exit code 130).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from orchestrator import gitcmd
from orchestrator.errors import EXIT_BAD_INPUT, InputError, Interrupted, OrchestratorError, SourceError
from orchestrator.gitfailure import NoSpaceError
from orchestrator.refs import NotCachedError

T = TypeVar("T")


class Named(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=Named)


class FetchFailed(OrchestratorError):
    """One or more repos could not be fetched; ``failures`` maps repo -> its error.

    Exit code 2 when every failure is bad input (a pin, ref or URL problem), else 1.
    """

    def __init__(self, failures: Mapping[str, OrchestratorError], *, total: int) -> None:
        super().__init__(f"{len(failures)} of {total} repositories could not be fetched")
        self.failures = dict(failures)
        if all(isinstance(error, InputError) for error in self.failures.values()):
            self.exit_code = EXIT_BAD_INPUT

    @property
    def missing(self) -> list[str]:
        """Repos that an offline run found missing from the cache."""
        return [n for n, e in self.failures.items() if isinstance(e, NotCachedError)]

    def __str__(self) -> str:
        lines = [f"{self.message}:"]
        for error in self.failures.values():
            lines += ["  " + line for line in str(error).splitlines()]
        if self.missing:
            lines.append("not in the cache (offline): " + ", ".join(self.missing))
        return "\n".join(lines)


def run_all(repos: Sequence[R], jobs: int, work: Callable[[R], T]) -> dict[str, T]:
    """``work(repo)`` for every repo, ``jobs`` at a time: the results by repo name.

    Raises ``FetchFailed`` naming every repo that failed, ``Interrupted`` on Ctrl-C, and
    ``GitMissingError`` once, before any work, when there is no git to run.
    """
    if repos:
        gitcmd.git_executable()
    results: dict[str, T] = {}
    failures: dict[str, OrchestratorError] = {}
    gitcmd.reset_cancellation()  # a new batch: a cancellation before it is over
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="fetch")
    try:
        futures = [(repo.name, pool.submit(_guarded, work, repo)) for repo in repos]
        for name, future in futures:
            try:
                results[name] = future.result()
            except OrchestratorError as error:
                failures[name] = error
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM turned into it): kill every git process, start none, and
        # let the workers end before the caller reports the interruption.
        gitcmd.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise Interrupted("interrupted: fetching stopped and its git processes were killed; "
                          "the next run repairs or reuses what they left") from None
    except BaseException:
        gitcmd.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if gitcmd.cancelled():
        raise Interrupted("interrupted: fetching stopped and its git processes were killed")
    if failures:
        raise FetchFailed(failures, total=len(repos))
    return results


def _guarded(work: Callable[[R], T], repo: R) -> T:
    try:
        return work(repo)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpaceError(repo.name, error.filename or "the cache or checkout directory") from error
        # An unwritable cache is the user's to fix, not a traceback.
        raise SourceError(
            f"{repo.name}: {error.strerror or error}: {error.filename or ''}".rstrip(": "),
            hint="check free space and permissions of the cache and checkout directories",
        ) from error
