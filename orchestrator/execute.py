"""Run a Plan: N workers, dependencies first, logs per artifact, keep-going, Ctrl-C.

Scheduling rules:
- a step starts only when everything it requires or stages has succeeded;
- steps of the same repository never run at once (they share one checkout);
- after a failure, no new step starts unless ``keep_going``; with it, only the
  failure's dependents are skipped, each saying which dependency failed;
- Ctrl-C stops running commands and containers, and raises Interrupted.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeAlias

from orchestrator import cache, gitcmd, hostprint, kinds, record
from orchestrator.builders.common import Claims, Job
from orchestrator.cache import ArtifactCache
from orchestrator.commands import CommandRunner
from orchestrator.errors import Interrupted, OrchestratorError, TimedOut, unicode_safe, visible
from orchestrator.manifest import Manifest
from orchestrator.model import file_stem
from orchestrator.outputs import ArtifactOutput, Source
from orchestrator.plan import Plan

if TYPE_CHECKING:
    from orchestrator.engine.protocol import ContainerEngine

Status: TypeAlias = record.ArtifactStatus  # one list of statuses, the record's


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    artifact: str
    status: Status
    output: ArtifactOutput = field(default_factory=ArtifactOutput)
    duration: float = 0.0
    log: Path | None = None
    error: str | None = None  # failed: the message; skipped/not-started: why
    cache_key: str | None = None
    timed_out: bool = False  # failed because it ran past its `timeout:`
    restored_from: str | None = None  # restored: the remote cache entry it came from


STOPPED = "not started: interrupted"  # the error of an artifact an interrupt kept from finishing


class BuildInterrupted(Interrupted):
    """Ctrl-C stopped the run: ``results`` has the artifacts that finished, every other one
    "not-started", for a record that says what is there (and that it is incomplete)."""

    def __init__(self, results: Mapping[str, Result]) -> None:
        super().__init__("interrupted: running commands and containers were stopped; "
                         "no partial outputs were published")
        self.results = dict(results)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A state change, for progress displays: queued, running, waiting, ok, cached, restored, failed,
    skipped, not-started."""

    artifact: str
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    jobs: int = 1
    keep_going: bool = False
    log_dir: Path = Path(".build/logs")
    release_dir: Path = Path("dist")
    force: frozenset[str] | bool = False  # True: rebuild everything; names: rebuild those
    on_log: Callable[[str, str], None] | None = None  # (artifact, line) as each log line is written
    # Built by another shard: seconds to wait for each in the cache (never built here
    # while the cache can be asked), holding neither a worker slot nor its repo.
    wait_for: Mapping[str, float] = field(default_factory=dict)
    restore_only: bool = False  # assemble: take everything from the cache, build nothing


def log_path(log_dir: Path, artifact: str) -> Path:
    return log_dir / (file_stem(artifact) + ".log")


def _open_log(path: Path) -> TextIO:
    """A new, empty log file at ``path``. The old one is removed first, never opened: .build/
    is not trusted, and a log planted as a symlink or a hard link to a user's file would
    have that file truncated and overwritten."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    return os.fdopen(fd, "w", encoding="utf-8")


def execute(
    plan: Plan,
    manifest: Manifest,
    sources: Mapping[str, Source],
    options: Options,
    *,
    engine: ContainerEngine | None = None,
    unavailable: Mapping[str, str] | None = None,
    on_event: Callable[[Event], None] | None = None,
    runner: CommandRunner | None = None,
    cache: ArtifactCache | None = None,
) -> dict[str, Result]:
    """Build every step of ``plan``; returns each artifact's Result in plan order.

    ``unavailable`` maps artifacts that cannot be built here to the reason (e.g. no
    Docker engine for the demo's images); they are skipped, as are their dependents.
    ``runner`` runs the host commands (default: one without the docker shim).
    ``cache`` finds earlier builds by key (cache.LocalCache); without one, everything
    is built.
    """
    return _Scheduler(plan, manifest, sources, options, engine, unavailable or {}, on_event,
                      runner or CommandRunner(), cache).run()


class _RecordNotInvalidated(Exception):
    """The release's record could not be made to stop saying ok: nothing may be built."""

    def __init__(self, error: OrchestratorError) -> None:
        super().__init__(str(error))
        self.error = error


class _Scheduler:
    def __init__(self, plan: Plan, manifest: Manifest, sources: Mapping[str, Source], options: Options,
                 engine: ContainerEngine | None, unavailable: Mapping[str, str],
                 on_event: Callable[[Event], None] | None, runner: CommandRunner,
                 cache: ArtifactCache | None) -> None:
        self.plan = plan
        self.manifest = manifest
        self.sources = sources
        self.options = options
        self.engine = engine
        self.unavailable = unavailable
        self.emit = on_event or (lambda event: None)
        self.runner = runner
        self.cache = cache
        self.results: dict[str, Result] = {}
        self.repo_locks = {repo: threading.Lock() for repo in plan.repos}
        self.stopping: str | None = None  # the first failure, when not keeping going
        self.checked_out: set[str] = set()
        self.claims = Claims()  # paths of the release directory, by artifact: no two outputs share one
        self.invalidated = False
        self.invalidating = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> dict[str, Result]:
        self.options.log_dir.mkdir(parents=True, exist_ok=True)
        for step in self.plan.steps:
            self.emit(Event(artifact=step.artifact, state="queued"))
        pending = [step.artifact for step in self.plan.steps]
        running: dict[Future[Result], str] = {}
        busy_repos: set[str] = set()
        waiting = self.options.wait_for
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.jobs) + len(waiting), thread_name_prefix="build")
        try:
            while pending or running:
                for name in list(pending):
                    if self.stopping:
                        break
                    verdict = self.readiness(name)
                    if verdict == "wait":
                        continue
                    if verdict != "go":
                        pending.remove(name)
                        self.finish(Result(artifact=name, status="skipped", error=verdict))
                        continue
                    repo = self.manifest.artifacts[name].repo
                    if name not in waiting and (repo in busy_repos or
                                                sum(n not in waiting for n in running.values()) >= self.options.jobs):
                        continue
                    pending.remove(name)
                    if name not in waiting:
                        busy_repos.add(repo)
                    self.emit(Event(artifact=name, state="running"))
                    running[pool.submit(self.build_one, name)] = name
                if self.stopping:
                    for name in pending:
                        self.finish(Result(artifact=name, status="not-started",
                                           error=f"not started: stopped after {self.stopping} failed "
                                                 "(use --keep-going to build what does not depend on it)"))
                    pending.clear()
                if not running:
                    continue  # pending steps are all ready now: the plan is topologically ordered
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    if name not in waiting:
                        busy_repos.discard(self.manifest.artifacts[name].repo)
                    self.finish(future.result())
        except KeyboardInterrupt:
            self.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            # What finished is complete and may be recorded; what ran or waited was not built.
            so_far = {step.artifact: self.results.get(step.artifact) or
                      Result(artifact=step.artifact, status="not-started", error=STOPPED)
                      for step in self.plan.steps}
            raise BuildInterrupted(so_far) from None
        except _RecordNotInvalidated as e:
            # No step may replace a file the old record still vouches for: stop the run,
            # leaving that record (and the files) as they were.
            pool.shutdown(wait=True, cancel_futures=True)
            raise e.error from None
        finally:
            pool.shutdown(wait=True)
        return {step.artifact: self.results[step.artifact] for step in self.plan.steps}

    def stop(self) -> None:
        """Ctrl-C: stop every running step, host commands and containers alike, before returning."""
        self.stopped.set()  # steps waiting for another shard stop waiting
        gitcmd.cancel()  # a lazy checkout's git runs in its own session: Ctrl-C never reached it
        if self.engine is not None:
            self.engine.cancel_all(wait=0)  # builder containers die now; running builds hear of it
        self.runner.cancel_all()  # host commands: SIGTERM, grace, SIGKILL; their containers too
        if self.engine is not None:
            self.engine.cancel_all()  # keep killing announced build steps until their builds end

    def readiness(self, name: str) -> str:
        """'go', 'wait', or the reason the step will be skipped."""
        if name in self.unavailable:
            return f"skipped: {self.unavailable[name]}"
        for dep in self.manifest.artifacts[name].dependencies:
            result = self.results.get(dep)
            if result is None:
                return "wait"
            if not record.is_built(result.status) and not self.options.restore_only:
                return f"skipped: dependency {dep} {'failed' if result.status == 'failed' else 'was not built'}"
        return "go"

    def finish(self, result: Result) -> None:
        self.results[result.artifact] = result
        if result.status == "failed" and not self.options.keep_going and not self.stopping:
            self.stopping = result.artifact
        self.emit(Event(artifact=result.artifact, state=result.status, detail=result.error or ""))

    def forced(self, name: str) -> bool:
        force = self.options.force
        return force if isinstance(force, bool) else name in force

    def key_for(self, name: str) -> str:
        artifact = self.manifest.artifacts[name]
        kind = kinds.get(artifact.type)
        builder_id = None
        builder = kind.builder_image(artifact)
        if builder and self.engine is not None:
            builder_id = self.engine.image_id(builder)
        command = kind.host_command(artifact)
        host = hostprint.fingerprint(command, os.environ.get("PATH")) if command is not None else None
        return cache.cache_key(
            self.manifest, artifact, commit=self.sources[artifact.repo].commit,
            dependency_keys={dep: self.results[dep].cache_key or "" for dep in artifact.dependencies},
            builder_id=builder_id, host=host,
        )

    def from_cache(self, name: str, key: str, log: Callable[[str], None], started: float,
                   path: Path) -> tuple[Result | None, str]:
        """The step's Result when the cache has its outputs (restoring them), else (None, why)."""
        store = self.cache
        if store is None:
            return None, "no cache to restore it from"
        if self.forced(name) and not self.options.restore_only:
            log("building: --force")
            return None, "--force"
        found = store.lookup(name, key)
        if found.output is None and name in self.options.wait_for and cache.available(store):
            found = self.wait_in_cache(name, key, found, log)
        if found.output is None:
            log(f"building: {found.why}" if not self.options.restore_only else f"not in the cache: {found.why}")
            return None, (f"no shard built it: {found.why}" if self.options.restore_only else found.why)
        if found.where is not None:
            self.invalidate_record()  # restoring replaces files of the release
        try:
            output = store.restore(name, key, found)
        except cache.Refused as e:
            log(f"building: {e}")
            return None, str(e)
        for file in output.files:
            self.claims.claim(file.path, name, file.path)
        if found.where is None:
            log("cached: inputs unchanged and outputs intact; nothing to do")
        else:
            log(f"restored from {found.where}")
        return Result(artifact=name, status="cached" if found.where is None else "restored", output=output, log=path,
                      cache_key=key, duration=time.monotonic() - started, restored_from=found.where), ""

    def wait_in_cache(self, name: str, key: str, found: cache.Found, log: Callable[[str], None]) -> cache.Found:
        """Ask the cache again and again (backing off) until another shard has stored the
        step, the wait's bound passes, or the run is stopped."""
        assert self.cache is not None
        limit = self.options.wait_for[name]
        self.emit(Event(artifact=name, state="waiting", detail=f"another shard builds it (up to {limit:.0f}s)"))
        log(f"waiting up to {limit:.0f}s for another shard to store {name} (key {key}) in the cache")
        deadline, pause = time.monotonic() + limit, 1.0
        while found.output is None and cache.available(self.cache) and not self.stopped.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return cache.Found(None, f"waited {limit:.0f}s for another shard to build {name} (cache key "
                                         f"{key[:12]}), and it never reached the cache; check that shard's job, or "
                                         "build it here with --shard-deps build")
            self.stopped.wait(min(pause, remaining))
            pause = min(pause * 1.5, 15.0)
            found = self.cache.lookup(name, key)
        return found

    def invalidate_record(self) -> None:
        """Before the first step that really builds, make the release's record stop
        saying ok: from here on its files change (record.invalidate). Once per run; a
        fully cached run invalidates nothing."""
        with self.invalidating:
            if not self.invalidated:
                try:
                    record.invalidate(self.options.release_dir)
                except OrchestratorError as e:
                    raise _RecordNotInvalidated(e) from e
                self.invalidated = True

    def ensure_checkout(self, repo: str) -> None:
        """Check the repo out on first real use (called under the repo's lock)."""
        prepare = self.sources[repo].prepare
        if repo not in self.checked_out and prepare is not None:
            prepare()
        self.checked_out.add(repo)

    def build_one(self, name: str) -> Result:
        artifact = self.manifest.artifacts[name]
        path = log_path(self.options.log_dir, name)
        started = time.monotonic()
        store = self.cache
        waited = name in self.options.wait_for
        with _open_log(path) as log_file, (contextlib.nullcontext() if waited else self.repo_locks[artifact.repo]):
            def log(line: str) -> None:
                # A file name from a container or a repository may not be UTF-8 (os.fsdecode
                # gives surrogates): it is shown escaped, never a reason to fail the build; and
                # no control sequence of a build's output reaches a terminal (errors.visible).
                line = unicode_safe(visible(line.rstrip("\n")))
                log_file.write(line + "\n")
                log_file.flush()
                if self.options.on_log is not None:
                    self.options.on_log(name, line)

            try:
                key = self.key_for(name)
                log(f"cache key {key}")
                had, why = self.from_cache(name, key, log, started, path)
                if had is not None:
                    return had
                if self.options.restore_only or (waited and cache.available(store)):
                    log(f"FAILED: {why}")
                    return Result(artifact=name, status="failed", duration=time.monotonic() - started, log=path,
                                  error=f"{name}: {why}", cache_key=key)
                if waited:
                    log(f"building {name} here: the remote cache cannot be used")
                self.invalidate_record()
                if store is not None:
                    store.forget(name)
                self.ensure_checkout(artifact.repo)
                staged = {
                    dest: tuple(self.options.release_dir / f.path for f in self.results[source].output.files)
                    for dest, source in artifact.stage
                }
                job = Job(manifest=self.manifest, artifact=artifact, source=self.sources[artifact.repo],
                          release_dir=self.options.release_dir, log=log, runner=self.runner, engine=self.engine,
                          staged=staged, cache_key=key, claims=self.claims, deadline=started + artifact.timeout)
                output = kinds.get(artifact.type).build(job)
                if store is not None:
                    store.store(name, key, output, time.monotonic() - started)
            except _RecordNotInvalidated as e:
                log(f"FAILED: {e.error}")
                raise
            except OrchestratorError as e:
                log(f"FAILED: {e}")
                return Result(artifact=name, status="failed", duration=time.monotonic() - started, log=path,
                              error=unicode_safe(str(e)), timed_out=isinstance(e, TimedOut))
            except Exception as e:  # a bug or an unexpected OS error: fail this artifact, keep the rest sane
                log(f"FAILED (unexpected): {type(e).__name__}: {e}")
                for line in traceback.format_exc().splitlines():  # the log keeps the whole story
                    log(line)
                return Result(artifact=name, status="failed", duration=time.monotonic() - started, log=path,
                              error=unicode_safe(f"{name}: unexpected {type(e).__name__}: {e}"))
        return Result(artifact=name, status="ok", output=output, duration=time.monotonic() - started, log=path,
                      cache_key=key)
