"""The release record: dist/<release>/release.json and SHA256SUMS.

Written last, atomically, after every artifact finished: a reader never sees a
record that names files which are not there yet.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.execute import Result
from orchestrator.fileops import first_damaged, write_atomic
from orchestrator.manifest import Manifest
from orchestrator.outputs import FileRecord, Source
from orchestrator.redact import redact_url

REPORT_FORMAT = 1


def _artifact_record(manifest: Manifest, result: Result, workspace: Path) -> dict[str, Any]:
    artifact = manifest.artifacts[result.artifact]
    return {
        "repo": artifact.repo,
        "type": artifact.type,
        "status": result.status,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in result.output.files],
        "images": [
            {"id": i.id, "refs": list(i.refs), "labels": dict(i.labels)} for i in result.output.images
        ],
        "duration": round(result.duration, 3),
        "log": _shown(result.log, workspace),
        "error": result.error,
        "cache_key": result.cache_key,
    }


def _shown(path: Path | None, workspace: Path) -> str | None:
    if path is None:
        return None
    return str(path.relative_to(workspace)) if path.is_relative_to(workspace) else str(path)


def _still_valid(record: Mapping[str, Any], release_dir: Path) -> bool:
    """A previous run's artifact whose files are all still there, unchanged."""
    if record.get("status") not in ("ok", "cached"):
        return False
    return first_damaged(release_dir, (FileRecord(**f) for f in record.get("files", []))) is None


def write_release(manifest: Manifest, sources: Mapping[str, Source], results: Mapping[str, Result], *,
                  release_dir: Path, workspace: Path, started: float) -> dict[str, Any]:
    """Write release.json and SHA256SUMS into ``release_dir``; return the record.

    Artifacts built by earlier runs of the same release and not rebuilt now are
    carried over when their files are intact and their repo is still at the same
    commit, so ``build felix`` after ``build --all`` keeps a whole record.
    """
    artifacts = {name: _artifact_record(manifest, result, workspace) for name, result in results.items()}
    repos: dict[str, dict[str, Any]] = {
        name: {"url": s.url, "ref": s.ref, "commit": s.commit, "commit_time": s.commit_time}
        for name, s in sources.items()
    }
    previous_path = release_dir / "release.json"
    if previous_path.is_file():
        try:
            previous = json.loads(previous_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
        for name, record in (previous.get("artifacts") or {}).items():
            if name in artifacts:
                _keep_pushed(artifacts[name], record)
                continue
            if name not in manifest.artifacts:
                continue
            repo = manifest.artifacts[name].repo
            old_repo = (previous.get("repos") or {}).get(repo)
            if not old_repo or (repo in repos and repos[repo]["commit"] != old_repo.get("commit")):
                continue
            if _still_valid(record, release_dir):
                artifacts[name] = {**record, "carried_over": True}
                repos.setdefault(repo, old_repo)
    order = list(manifest.artifacts)
    artifacts = dict(sorted(artifacts.items(), key=lambda item: order.index(item[0])))
    repo_order = list(manifest.repos)
    repos = dict(sorted(repos.items(), key=lambda item: repo_order.index(item[0])))
    statuses = {record["status"] for record in artifacts.values()}
    record = {
        "format": REPORT_FORMAT,
        "release": manifest.release,
        "status": "ok" if statuses <= {"ok", "cached"} else "failed" if "failed" in statuses else "incomplete",
        "manifest": {"path": str(manifest.path), "sha256": manifest.sha256},
        "started": _iso(started),
        "finished": _iso(datetime.datetime.now(datetime.UTC).timestamp()),
        "repos": {name: {**data, "url": redact_url(data["url"])} for name, data in repos.items()},
        "artifacts": artifacts,
    }
    sums = sorted(
        (file["path"], file["sha256"])
        for data in artifacts.values() if data["status"] in ("ok", "cached")
        for file in data["files"]
    )
    release_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(release_dir / "SHA256SUMS", "".join(f"{sha}  {path}\n" for path, sha in sums).encode())
    write_atomic(release_dir / "release.json", (json.dumps(record, indent=2) + "\n").encode())
    return record


def _keep_pushed(current: dict[str, Any], previous: Mapping[str, Any]) -> None:
    """Keep the registry digests of images that are still the same image (same id):
    a cached rebuild must not make an unchanged, published release look unpublished."""
    pushed_by_id = {image.get("id"): image["pushed"] for image in previous.get("images", []) if image.get("pushed")}
    for image in current["images"]:
        if image["id"] in pushed_by_id:
            image["pushed"] = pushed_by_id[image["id"]]


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
