"""Manifests and plans rendered for people (tables) and programs (JSON).

Pure functions returning strings or JSON-ready dicts; printing is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator import graph, kinds
from orchestrator.model import Artifact, Manifest
from orchestrator.plan import Plan, build_order
from orchestrator.redact import redact_url


def count(number: int, noun: str) -> str:
    """``3 artifacts``, ``1 artifact``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


JSON_FORMAT = 1  # bump when the shape of `invoke manifest --json` changes incompatibly


def _artifact_json(manifest: Manifest, artifact: Artifact, edges: dict[str, tuple[str, ...]],
                   order: dict[str, int]) -> dict[str, Any]:
    closure = graph.closure(edges, artifact.dependencies)
    return {
        "repo": artifact.repo,
        "type": artifact.type,
        "description": artifact.description,
        "dependencies": list(artifact.dependencies),
        "all_dependencies": sorted(closure, key=order.__getitem__),
        "timeout": artifact.timeout,
        "requires": list(artifact.requires),
        **kinds.get(artifact.type).describe(manifest, artifact),
    }


def manifest_json(manifest: Manifest) -> dict[str, Any]:
    """The resolved manifest: defaults applied, image references computed,
    each artifact's direct and transitive dependencies, and the build order."""
    edges = {a.name: a.dependencies for a in manifest.artifacts.values()}
    ordered = build_order(manifest)
    order = {name: i for i, name in enumerate(ordered)}
    return {
        "format": JSON_FORMAT,
        "schema": manifest.schema,
        "release": manifest.release,
        "manifest": {"path": str(manifest.path), "sha256": manifest.sha256},
        "defaults": {
            "registry": manifest.defaults.registry,
            "tag": manifest.defaults.tag,
            "env": dict(manifest.defaults.env),
            "network": manifest.defaults.network,
            "timeout": manifest.defaults.timeout,
        },
        "repos": {
            repo.name: {
                "url": redact_url(repo.url),
                "ref": repo.ref,
                "commit": repo.commit,
                "description": repo.description,
                "artifacts": list(repo.artifacts),
            }
            for repo in manifest.repos.values()
        },
        "artifacts": {
            artifact.name: _artifact_json(manifest, artifact, edges, order)
            for artifact in manifest.artifacts.values()
        },
        "build_order": list(ordered),
    }


def table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart, without trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows]


def manifest_table(manifest: Manifest) -> str:
    """A readable overview: repo, ref, short commit, artifacts and their types."""
    rows: list[tuple[str, ...]] = [("REPO", "REF", "COMMIT", "ARTIFACT", "TYPE")]
    for repo in manifest.repos.values():
        commit = repo.commit[:12] if repo.commit else "(unpinned)"
        names = repo.artifacts or ("-",)
        for i, name in enumerate(names):
            kind = manifest.artifacts[name].type if name in manifest.artifacts else ""
            first = i == 0
            rows.append((repo.name if first else "", repo.ref if first else "", commit if first else "", name, kind))
    header = (
        f"release {manifest.release}: {len(manifest.repos)} repos, "
        f"{len(manifest.artifacts)} artifacts ({manifest.path})"
    )
    return "\n".join([header, "", *table(rows)])


def plan_json(plan: Plan) -> dict[str, Any]:
    """The dry-run view of a plan for programs: the steps in order, with what each would do."""
    return {
        "format": JSON_FORMAT,
        "release": plan.release,
        "repos": list(plan.repos),
        "steps": [{"artifact": s.artifact, "repo": s.repo, "type": s.type, "requested": s.requested,
                   "dependencies": list(s.dependencies), "actions": list(s.actions)} for s in plan.steps],
    }


def plan_text(plan: Plan) -> str:
    """The dry-run view of a plan: order, and what each step would run."""
    lines = [f"plan for release {plan.release}: {count(len(plan.steps), 'artifact')} from "
             f"{count(len(plan.repos), 'repo')}"]
    for i, step in enumerate(plan.steps, 1):
        why = "" if step.requested else "  (dependency)"
        after = f"  after {', '.join(step.dependencies)}" if step.dependencies else ""
        lines.append(f"{i:>3}. {step.artifact} [{step.type}, repo {step.repo}]{after}{why}")
        lines.extend(f"       - {action}" for action in step.actions)
    return "\n".join(lines)
