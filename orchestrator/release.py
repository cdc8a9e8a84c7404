"""One release build, start to finish: plan -> Docker check -> fetch -> execute -> record.

The library entry point behind ``invoke build`` and ``invoke demo``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import kinds, record, sharedbuild, stamps
from orchestrator.cache import Layered, LocalCache
from orchestrator.errors import DockerUnavailableError, Interrupted, OrchestratorError
from orchestrator.execute import STOPPED, BuildInterrupted, Event, Options, Result, execute
from orchestrator.fetching import default_jobs, fetch_options, fetch_sources
from orchestrator.manifest import Manifest
from orchestrator.outputs import Source
from orchestrator.plan import Plan
from orchestrator.record import Release
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.children import Children
    from orchestrator.engine.protocol import ContainerEngine
    from orchestrator.signing import Signer


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    plan: Plan
    results: dict[str, Result]
    release_dir: Path
    record: Release
    docker_problem: str | None = None  # set when images were skipped for want of an engine

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results.values() if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing was left out because of a failure."""
        return all(record.is_built(r.status) or (r.status == "skipped" and self.docker_problem and not self.failed)
                   for r in self.results.values())


def needs_docker(manifest: Manifest, plan: Plan) -> list[str]:
    """Artifacts of the plan that need a Docker engine (images, builder containers)."""
    return [s.artifact for s in plan.steps
            if kinds.get(s.type).needs_docker(manifest.artifacts[s.artifact])]


def connect_docker(
    manifest: Manifest, plan: Plan, *, tolerate_missing: bool,
    engine_factory: Callable[[], ContainerEngine] | None = None,
) -> tuple[ContainerEngine | None, dict[str, str], str | None]:
    """An engine when the plan needs one. Unreachable: raise DockerUnavailableError once,
    before any work, or (``tolerate_missing``) mark those artifacts unavailable."""
    docker_steps = needs_docker(manifest, plan)
    if not docker_steps:
        return None, {}, None
    if engine_factory is None:
        from orchestrator.engine.dockerpy import Engine

        engine_factory = Engine.connect
    try:
        return engine_factory(), {}, None
    except DockerUnavailableError as e:
        if not tolerate_missing:
            raise
        reason = str(e).splitlines()[0]
        return None, {name: f"no Docker engine ({reason})" for name in docker_steps}, str(e)


def build_release(manifest: Manifest, plan: Plan, settings: Settings, *, keep_going: bool = False,
                  tolerate_missing_docker: bool = False, engine_factory: Callable[[], ContainerEngine] | None = None,
                  on_event: Callable[[Event], None] | None = None,
                  on_fetch: Callable[[str, str], None] | None = None,
                  fetch: Callable[[Manifest, Plan, Settings], dict[str, Source]] | None = None,
                  force: frozenset[str] | bool = False, children: Children | None = None,
                  on_log: Callable[[str, str], None] | None = None, signer: Signer | None = None,
                  on_warning: Callable[[str], None] | None = None) -> Outcome:
    """Build ``plan`` and write dist/<release>/ with SHA256SUMS, provenance.json and release.json.

    ``children`` runs the host commands and holds the engine (default: a new one for the
    workspace, with the docker shim under its .build/); ``engine_factory`` is used only
    without it. ``on_log(artifact, line)`` hears every line of every step's log. ``signer``
    signs provenance.json (provenance.intoto.jsonl); without one the release is unsigned.

    With ``settings.cache`` the registry repository it names is a shared cache behind
    this workspace's (``remotecache``); ``settings.shard`` builds one share of ``plan``
    (``sharding``) and writes a partial record; ``settings.assemble`` builds nothing and
    restores all of it. ``on_warning`` hears what the shared cache has to say."""
    from orchestrator.children import Children
    from orchestrator.report import write_release
    from orchestrator.workspace import refuse_links

    started = time.time()
    release_dir = settings.dist_dir / manifest.release
    state_dir, log_dir = settings.build_dir / "state", settings.build_dir / "logs"
    refuse_links(release_dir, state_dir, state_dir / manifest.release, log_dir, log_dir / manifest.release)
    # A damaged or hand-edited record stops the build before any work, naming the field:
    # carrying over from it would trust it, and overwriting it would hide the tampering.
    record.read_previous(release_dir)
    if children is None:
        children = Children(workspace=settings.workspace, build_dir=settings.build_dir, engine_factory=engine_factory)
    shared = sharedbuild.cache_for(settings, release_dir=release_dir, warn=on_warning)
    plan, wait_for = sharedbuild.shard(manifest, plan, settings, shared, on_warning)
    engine, unavailable, docker_problem = connect_docker(
        manifest, plan, tolerate_missing=tolerate_missing_docker, engine_factory=children.engine)
    sources = (fetch or (lambda m, p, s: fetch_sources(m, p.repos, s, on_fetch, lazy=True)))(manifest, plan, settings)
    options = Options(
        jobs=settings.jobs or default_jobs(),
        keep_going=keep_going,
        log_dir=log_dir / manifest.release,
        release_dir=release_dir,
        force=force,
        on_log=on_log,
        wait_for=wait_for,
        restore_only=settings.assemble,
    )
    local = LocalCache(state_dir / manifest.release, release_dir=release_dir, engine=engine,
                       trust=stamps.key(fetch_options(settings).cache_dir))
    remote = sharedbuild.attach(shared, manifest, sources, engine)
    try:
        results = execute(plan, manifest, sources, options, engine=engine, unavailable=unavailable,
                          on_event=on_event, runner=children.runner,
                          cache=local if remote is None else Layered(local, remote))
    except BuildInterrupted as e:
        if remote is not None:
            remote.finish(cancel=True)
        raise _recorded(e, manifest, sources, release_dir=release_dir, workspace=settings.workspace,
                        started=started, signer=signer, shard=sharedbuild.shard_name(settings)) from None
    except BaseException:
        if remote is not None:
            remote.finish(cancel=True)
        raise
    if remote is not None:
        remote.finish()  # the stores still under way
    written = write_release(manifest, sources, results, release_dir=release_dir, workspace=settings.workspace,
                            started=started, signer=signer, shard=sharedbuild.shard_name(settings))
    if remote is not None and settings.shard is None:
        sharedbuild.store_timings(remote, results)
    return Outcome(plan=plan, results=results, release_dir=release_dir, record=written,
                   docker_problem=docker_problem)


def _recorded(interrupted: BuildInterrupted, manifest: Manifest, sources: Mapping[str, Source], *,
              release_dir: Path, workspace: Path, started: float, signer: Signer | None,
              shard: str | None) -> Interrupted:
    """The interrupt, after recording what finished: the artifacts that were built are in
    dist/ already, and a release.json that says so (status incomplete: never verified or
    published as a whole) is better than files no record accounts for. A record that still
    holds (the run replaced nothing) is kept as it is; when the record cannot be written,
    the interrupt is raised as it was."""
    from orchestrator.report import write_release

    if not any(record.is_built(result.status) for result in interrupted.results.values()):
        return interrupted
    try:
        previous = record.read_previous(release_dir)
    except OrchestratorError:
        previous = None
    if previous is not None and previous.status != "building":
        return interrupted  # nothing was replaced yet: the old record still holds, and stays
    stopped = {name for name, result in interrupted.results.items() if result.error == STOPPED}
    done = {name: result for name, result in interrupted.results.items() if name not in stopped}
    try:
        written = write_release(manifest, sources, done, release_dir=release_dir, workspace=workspace,
                                started=started, stopped=stopped, signer=signer, shard=shard)
    except (OrchestratorError, OSError):
        return interrupted
    built = len(written.built())
    return Interrupted(f"{interrupted.message}; release.json records the {built} built artifact"
                       f"{'' if built == 1 else 's'} (release status {written.status})")
