"""dist/<release>/provenance.json: an in-toto Statement v1 carrying SLSA Provenance v1.

Built from the release record (``release.json``) alone, so that ``verify`` can rebuild
the expected statement and compare, and ``publish`` can rewrite it once registry digests
are known. Field names follow https://slsa.dev/provenance/v1 and the in-toto Statement
and ResourceDescriptor specs (https://github.com/in-toto/attestation/tree/main/spec/v1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.fileops import write_atomic
from orchestrator.manifest import Manifest
from orchestrator.redact import redact_url

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/release-orchestrator/buildtypes/manifest/v1"
# The build platform is "this tool, run by whoever ran it": nothing stronger is claimed.
BUILDER_ID = "https://github.com/release-orchestrator/builders/local/v1"
FILENAME = "provenance.json"
PUBLISHED_STATUSES = ("ok", "cached")  # artifacts whose outputs are part of the release (as in SHA256SUMS)


def statement(manifest: Manifest, record: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance statement of the release ``record`` (a parsed release.json).

    Subjects: every published file (name = path relative to the release directory) and
    every image reference (digest = the registry digest once pushed, else the image id).
    Keys come out in the same order on every run.
    """
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(record),
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "release": record.get("release", manifest.release),
                    "manifest": {
                        "path": str((record.get("manifest") or {}).get("path", manifest.path)),
                        "sha256": (record.get("manifest") or {}).get("sha256", manifest.sha256),
                    },
                    "artifacts": list(record.get("artifacts") or {}),
                },
                "resolvedDependencies": dependencies(manifest, record),
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"release-orchestrator": __version__}},
                "metadata": {"startedOn": record.get("started"), "finishedOn": record.get("finished")},
            },
        },
    }


def write_provenance(manifest: Manifest, record: Mapping[str, Any], release_dir: Path) -> Path:
    """Write ``release_dir/provenance.json`` atomically; returns its path."""
    path = release_dir / FILENAME
    write_atomic(path, (json.dumps(statement(manifest, record), indent=2) + "\n").encode())
    return path


def subjects(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statement's subjects: files first, then image references, in record order."""
    found: dict[str, str] = {}
    for _, artifact in published_artifacts(record):
        for file in artifact.get("files") or []:
            found.setdefault(str(file["path"]), str(file["sha256"]))
    for _, artifact in published_artifacts(record):
        for image in artifact.get("images") or []:
            pushed: Mapping[str, Any] = image.get("pushed") or {}
            for ref in image.get("refs") or []:
                landed = pushed.get(ref)
                found.setdefault(str(ref), _hex(landed["digest"] if landed else image["id"]))
            for ref, landed in pushed.items():  # refs pushed under another registry (publish --registry)
                found.setdefault(str(ref), _hex(landed["digest"]))
    return [{"name": name, "digest": {"sha256": digest}} for name, digest in found.items()]


def dependencies(manifest: Manifest, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ResourceDescriptor per repository of the record, in manifest order."""
    repos: Mapping[str, Any] = record.get("repos") or {}
    order = [name for name in manifest.repos if name in repos] + [name for name in repos if name not in manifest.repos]
    return [
        {
            "uri": f"git+{redact_url(str(repos[name]['url']))}@{repos[name]['ref']}",
            "digest": {"gitCommit": str(repos[name]["commit"])},
            "name": name,
        }
        for name in order
    ]


def published_artifacts(record: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(name, record) of each artifact whose outputs belong to the release."""
    for name, artifact in (record.get("artifacts") or {}).items():
        if artifact.get("status") in PUBLISHED_STATUSES:
            yield name, artifact


def _hex(digest: str) -> str:
    """``sha256:abc...`` -> ``abc...``: a DigestSet holds the bare hex under its algorithm."""
    return str(digest).removeprefix("sha256:")
