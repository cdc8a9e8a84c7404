"""Which artifacts to build, and in which order: names -> closure -> ordered steps.

Pure: reads a Manifest, touches neither git nor Docker.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator import graph, kinds
from orchestrator.errors import InputError, UnknownNameError
from orchestrator.model import Artifact, Manifest, command_text


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One artifact to build."""

    artifact: str
    repo: str
    type: str
    requested: bool  # named on the command line (False: pulled in as a dependency)
    dependencies: tuple[str, ...]
    actions: tuple[str, ...]  # human-readable: what building it will do


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    release: str
    steps: tuple[Step, ...]

    @property
    def repos(self) -> tuple[str, ...]:
        """The repositories the plan needs, in first-use order."""
        return tuple(dict.fromkeys(step.repo for step in self.steps))

    @property
    def artifacts(self) -> tuple[str, ...]:
        return tuple(step.artifact for step in self.steps)


def split_names(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"felix, calicoctl"`` (or several such words) -> ``("felix", "calicoctl")``."""
    words = [text] if isinstance(text, str) else list(text)
    names: list[str] = []
    for word in words:
        for part in word.split(","):
            if part.strip():
                names.append(part.strip())
    return tuple(dict.fromkeys(names))


def select(manifest: Manifest, names: Sequence[str], *, everything: bool = False) -> tuple[str, ...]:
    """Artifact names meant by ``names``: a repo means all its artifacts.

    A word that names both a repo and an artifact (felix) means the repo.
    """
    if everything:
        if names:
            raise InputError(f"give names or --all, not both (got {', '.join(names)} and --all)")
        return tuple(manifest.artifacts)
    if not names:
        raise InputError("nothing to build", hint="name repos or artifacts (felix,calicoctl) or pass --all")
    selected: list[str] = []
    for name in names:
        if name in manifest.repos:
            selected.extend(manifest.repos[name].artifacts)
        elif name in manifest.artifacts:
            selected.append(name)
        else:
            valid = sorted({*manifest.repos, *manifest.artifacts})
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
            raise UnknownNameError(name, valid, close[0] if close else None)
    return tuple(dict.fromkeys(selected))


def make_plan(manifest: Manifest, names: Sequence[str] = (), *, everything: bool = False) -> Plan:
    """The ordered build steps for ``names`` (or everything), dependencies included."""
    requested = select(manifest, names, everything=everything)
    edges = {a.name: a.dependencies for a in manifest.artifacts.values()}
    needed = graph.closure(edges, requested)
    wanted = set(requested)
    steps = tuple(
        Step(
            artifact=name,
            repo=manifest.artifacts[name].repo,
            type=manifest.artifacts[name].type,
            requested=name in wanted,
            dependencies=manifest.artifacts[name].dependencies,
            actions=describe_actions(manifest, manifest.artifacts[name]),
        )
        for name in graph.topological_order(edges, needed)
    )
    return Plan(release=manifest.release, steps=steps)


def build_order(manifest: Manifest) -> tuple[str, ...]:
    """Every artifact of the manifest, dependencies first."""
    edges = {a.name: a.dependencies for a in manifest.artifacts.values()}
    return graph.topological_order(edges, edges)


def describe_actions(manifest: Manifest, artifact: Artifact) -> tuple[str, ...]:
    """What building ``artifact`` will do, one short line per action."""
    repo = manifest.repos[artifact.repo]
    checkout = f"check out {repo.name} at {repo.ref}" + (f" ({repo.commit[:12]})" if repo.commit else "")
    return (checkout, *kinds.get(artifact.type).actions(manifest, artifact))


__all__ = ["Plan", "Step", "build_order", "command_text", "describe_actions", "make_plan", "select", "split_names"]
