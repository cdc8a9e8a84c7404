"""Splitting one release across CI jobs: which artifacts shard K of N builds.

Every shard computes the whole assignment from the same inputs (the plan's artifact
names and, when the cache holds them, the previous run's build seconds per artifact)
and keeps its own share, so N jobs on N machines agree without talking to each other.
The split is greedy longest-first: artifacts sorted by duration (longest first, then by
name), each given to the shard with the least work so far (the lowest index on a tie).
Without durations every artifact weighs the same, which balances by count. An artifact
with no duration of its own (new in this release) weighs the median of the others.

A shard also needs what its artifacts require or stage; those that another shard
builds are taken from the cache (``wait_bounds`` says how long to wait for each) or,
with ``--shard-deps build``, built here as well.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping

from orchestrator.graph import closure
from orchestrator.manifest import Manifest
from orchestrator.plan import Plan, Step


def assign(artifacts: Iterable[str], durations: Mapping[str, float], count: int) -> list[tuple[str, ...]]:
    """The ``count`` shares of ``artifacts`` (each in the given order), balanced by duration."""
    names = list(dict.fromkeys(artifacts))
    known = [durations[name] for name in names if name in durations]
    default = statistics.median(known) if known else 1.0
    weight = {name: max(float(durations.get(name, default)), 0.001) for name in names}
    loads = [0.0] * count
    owner: dict[str, int] = {}
    for name in sorted(names, key=lambda n: (-weight[n], n)):
        index = min(range(count), key=lambda i: (loads[i], i))
        owner[name] = index
        loads[index] += weight[name]
    return [tuple(name for name in names if owner[name] == i) for i in range(count)]


def shard_plan(manifest: Manifest, plan: Plan, durations: Mapping[str, float], index: int,
               count: int) -> tuple[Plan, tuple[str, ...]]:
    """Shard ``index`` (1-based) of ``count``: the plan it runs (its share and what that
    share needs, in build order) and its share itself."""
    share = assign(plan.artifacts, durations, count)[index - 1]
    edges = {name: artifact.dependencies for name, artifact in manifest.artifacts.items()}
    needed = closure(edges, share)
    mine = set(share)
    steps = tuple(Step(artifact=s.artifact, repo=s.repo, type=s.type, requested=s.artifact in mine,
                       dependencies=s.dependencies, actions=s.actions) for s in plan.steps if s.artifact in needed)
    return Plan(release=plan.release, steps=steps), share


def wait_bounds(manifest: Manifest, foreign: Iterable[str]) -> dict[str, float]:
    """How long to wait for each artifact another shard builds: the longest its build and
    the builds it waits for could take one after the other (the sum of their timeouts)."""
    edges = {name: artifact.dependencies for name, artifact in manifest.artifacts.items()}
    bounds: dict[str, float] = {}
    for name in foreign:
        chain = closure(edges, [name])
        bounds[name] = float(sum(manifest.artifacts[n].timeout for n in chain))
    return bounds
