"""One release on many machines: the run's settings turned into a shared cache and a shard.

``release.build_release`` asks here for the registry client (``--cache``), the share of
the plan this run builds (``--shard K/N``, balanced by the timings the cache holds) and
what it waits for, the ``RemoteCache`` behind the workspace's own, and, after a whole
build or an assemble, stores the build seconds of each artifact for the next split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import kinds, sharding
from orchestrator.ociclient import Client, docker_credentials, parse_repository
from orchestrator.outputs import ArtifactOutput, Source
from orchestrator.plan import Plan
from orchestrator.record import ArtifactEntry, Image
from orchestrator.remotecache import Mode, RemoteCache
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.engine.protocol import ContainerEngine
    from orchestrator.execute import Result
    from orchestrator.manifest import Manifest


def cache_for(settings: Settings, *, release_dir: Path, warn: Callable[[str], None] | None) -> RemoteCache | None:
    """The shared cache ``--cache`` names (None without one), with the Docker config's login
    for its registry; ``attach`` gives it the engine and the manifest's checks once known."""
    if settings.cache is None:
        return None
    repository = parse_repository(settings.cache)
    client = Client(repository, credentials=docker_credentials(repository.host))
    mode: Mode = "read" if settings.cache_mode == "read" else "readwrite"
    return RemoteCache(client, release_dir=release_dir, engine=None, mode=mode,
                       required=settings.require_cache or settings.assemble, warn=warn)


def shard(manifest: Manifest, plan: Plan, settings: Settings, remote: RemoteCache | None,
          warn: Callable[[str], None] | None) -> tuple[Plan, dict[str, float]]:
    """The plan this run builds and, for a shard, the artifacts it waits for (with the
    longest wait for each): its dependencies another shard builds, unless
    ``--shard-deps build`` builds them here too."""
    if settings.shard is None or remote is None:
        return plan, {}
    durations = remote.timings()
    index, count = settings.shard
    mine, share = sharding.shard_plan(manifest, plan, durations, index, count)
    if warn is not None:
        how = "by the durations of the last run" if durations else "by count (no durations in the cache yet)"
        warn(f"shard {index}/{count}: building {len(share)} of {len(plan.steps)} artifacts, balanced {how}"
             + (f": {', '.join(share)}" if share else ""))
    foreign = [name for name in mine.artifacts if name not in share]
    if settings.shard_deps == "build":
        return mine, {}
    return mine, sharding.wait_bounds(manifest, foreign)


def attach(remote: RemoteCache | None, manifest: Manifest, sources: Mapping[str, Source],
           engine: ContainerEngine | None) -> RemoteCache | None:
    """Give the shared cache the run's engine, and the check that an entry's outputs are
    what this manifest's artifact could publish (no path of another kind, no other image
    references)."""
    if remote is None:
        return None

    def check(name: str, output: ArtifactOutput) -> list[str]:
        artifact = manifest.artifacts[name]
        entry = ArtifactEntry(repo=artifact.repo, type=artifact.type, status="ok", files=output.files,
                              images=tuple(Image(id=i.id, refs=i.refs, labels=i.labels) for i in output.images))
        return list(kinds.get(artifact.type).recorded_problems(manifest, artifact, entry,
                                                                sources[artifact.repo].commit))

    remote.engine, remote.check = engine, check
    return remote


def shard_name(settings: Settings) -> str | None:
    return None if settings.shard is None else f"{settings.shard[0]}/{settings.shard[1]}"


def store_timings(remote: RemoteCache, results: Mapping[str, Result]) -> None:
    """After a whole build or an assemble: each artifact's build seconds, as measured where
    it was built (restored ones: as their cache entry says), for the next run's shards."""
    durations: dict[str, float] = {}
    for name, result in results.items():
        if result.status == "ok":
            durations[name] = result.duration
        elif result.status == "restored" and result.cache_key is not None:
            entry = remote.entry(name, result.cache_key)
            if entry is not None:
                durations[name] = entry.duration
    remote.store_timings(durations)
