"""What a release directory holds, from its record: `invoke status`.

Reads release.json (strictly, like every reader) and says what was built, cached,
carried over, failed or skipped, from which commits, what was published where, and
whether the manifest that built it is still there and unchanged. Reading only: it
takes no lock and touches neither git nor Docker.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import record
from orchestrator.conformance import build_command
from orchestrator.describe import count, table
from orchestrator.errors import reason
from orchestrator.fileops import read_limited
from orchestrator.manifest import Manifest
from orchestrator.record import Release
from orchestrator.report import recorded_manifest


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    release_dir: Path
    record: Release
    manifest: Path  # where the record says the manifest is
    manifest_state: str  # "unchanged", "changed since the build", "missing", ...
    not_built: tuple[str, ...] = ()  # artifacts of the manifest that the record lacks


def status_of(release_dir: Path, manifest: Manifest | None = None) -> Status:
    """The status of ``release_dir``; ``manifest`` (when it was loaded) names what the
    release should hold, to list what it lacks, and how to build it when it is not built."""
    release = record.read(release_dir, build=build_command(manifest)) if manifest else record.read(release_dir)
    path = recorded_manifest(release_dir, release.manifest.path)
    try:
        digest = hashlib.sha256(read_limited(path)).hexdigest()
        state = "unchanged" if digest == release.manifest.sha256 else f"changed since the build (sha256 {digest})"
    except FileNotFoundError:
        state = "missing"
    except OSError as e:
        state = f"unreadable: {e.strerror}"
    missing = tuple(name for name in (manifest.artifacts if manifest else ()) if name not in release.artifacts)
    return Status(release_dir=release_dir, record=release, manifest=path, manifest_state=state, not_built=missing)


def format_status(status: Status, *, shown_dir: str, shown_manifest: str) -> str:
    """The status for people: the release line, the manifest, repos, then one row per artifact."""
    release = status.record
    counts = Counter("carried over" if a.carried_over else a.status for a in release.artifacts.values())
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    lines = [
        f"release {release.release}: {release.status}" + (f" (shard {release.shard})" if release.shard else "")
        + f" ({count(len(release.artifacts), 'artifact')}: {summary})",
        f"  in {shown_dir}, built {release.started} .. {release.finished} by orchestrator {release.orchestrator}",
        f"  manifest {shown_manifest} (sha256 {release.manifest.sha256[:12]}): {status.manifest_state}",
        "",
    ]
    lines += table([("REPO", "REF", "COMMIT")] + [(name, repo.ref, repo.commit[:12])
                                                  for name, repo in release.repos.items()])
    rows = [("ARTIFACT", "STATUS", "OUTPUTS")]
    for name, artifact in release.artifacts.items():
        state = "carried over" if artifact.carried_over else artifact.status
        outputs = [f.path for f in artifact.files] + [ref for image in artifact.images for ref in image.refs]
        if not artifact.built and artifact.error:
            outputs = [reason(name, artifact.error)]
        rows.append((name, state, ", ".join(outputs) or "-"))
        if artifact.restored_from:
            rows.append(("", "from", artifact.restored_from))
        for image in artifact.images:
            for ref, landed in image.pushed.items():
                rows.append(("", "published", f"{ref}@{landed.digest}"))
    lines += ["", *table(rows)]
    if status.not_built:
        lines += ["", f"not in this release ({len(status.not_built)}): {', '.join(status.not_built)}"]
    return "\n".join(lines)


def status_json(status: Status) -> dict[str, Any]:
    """The status for programs: the record itself, plus where the manifest is and its state.
    Paths are absolute, as in ``build --json``: a program may read them from anywhere."""
    return {
        "release_dir": str(status.release_dir.resolve()),
        "manifest": {"path": str(status.manifest.resolve()), "state": status.manifest_state},
        "not_built": list(status.not_built),
        "record": record.to_json(status.record),
    }
