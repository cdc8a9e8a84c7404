"""Results as JSON for CI (``--json``): one document on stdout per command, nothing else there.

Shapes are stable (``format`` is bumped when one changes incompatibly): per-artifact
status, outputs, durations and errors for a build; repos and commits for a fetch; every
check for a verify; every reference for a publish.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.outputs import Source
from orchestrator.publish import PublishReport
from orchestrator.release import Outcome
from orchestrator.verify import VerifyReport
from orchestrator_cli.display import shown_path

FORMAT = 1


def build_json(outcome: Outcome) -> dict[str, Any]:
    artifacts: dict[str, Any] = {}
    for name, result in outcome.results.items():
        artifacts[name] = {
            "status": result.status,
            "timed_out": result.timed_out,
            "duration": round(result.duration, 3),
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in result.output.files],
            "images": [{"id": i.id, "refs": list(i.refs)} for i in result.output.images],
            "error": result.error,
            "log": shown_path(result.log) if result.log else None,
            "restored_from": result.restored_from,
        }
    return {
        "format": FORMAT,
        "release": outcome.record.release,
        "status": outcome.record.status,
        "release_dir": str(outcome.release_dir.resolve()),
        "failed": [r.artifact for r in outcome.failed],
        "docker_problem": outcome.docker_problem,
        "artifacts": artifacts,
    }


def fetch_json(checkouts: Mapping[str, Source]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "repos": {name: {"url": s.url, "ref": s.ref, "commit": s.commit, "path": str(s.path)}
                  for name, s in checkouts.items()},
    }


def verify_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "release": report.release,
        "release_dir": str(report.release_dir.resolve()),
        "ok": report.ok,
        "counts": {"matched": sum(1 for c in report.checks if c.ok), "failed": len(report.failures),
                   "not_checked": len(report.unchecked)},
        "skipped": list(report.skipped),
        "checks": [{"what": c.what, "area": c.area, "ok": c.ok, "detail": c.detail} for c in report.checks],
    }


def publish_json(report: PublishReport) -> dict[str, Any]:
    def refs(pushed: Any) -> list[dict[str, str]]:
        return [{"artifact": p.artifact, "ref": p.ref, "id": p.id, "digest": p.digest} for p in pushed]

    return {
        "format": FORMAT,
        "release": report.release,
        "registry": report.registry,
        "already_published": report.already_published,
        "pushed": refs(report.pushed),
        "already": refs(report.already),
    }
