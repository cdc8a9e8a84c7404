"""Content-addressed skipping: an artifact whose inputs did not change is not rebuilt.

An artifact's cache key hashes everything its result depends on: its canonical spec
(command, outputs, env, Dockerfile settings, rendered image references...), the
release name (commands see it as $RELEASE), its repository's commit, the keys of
everything it requires or stages, the builder image's id, and a format version.
The last successful build of each artifact is recorded under
``.build/state/<release>/``; a matching key with outputs still intact (files' sha256,
images present and labelled with the key) means the artifact is reported as cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.fileops import first_damaged, write_atomic
from orchestrator.manifest import Artifact, Manifest, image_refs
from orchestrator.model import file_stem
from orchestrator.outputs import ArtifactOutput, FileRecord, ImageRecord

if TYPE_CHECKING:
    from orchestrator.engine import Engine

# Bump when the meaning of a key changes (what goes into it, or how builders use it).
KEY_FORMAT = 1
KEY_LABEL = "io.github.release-orchestrator.cache-key"


def cache_key(manifest: Manifest, artifact: Artifact, *, commit: str, dependency_keys: Mapping[str, str],
              builder_id: str | None) -> str:
    """The sha256 of everything that determines ``artifact``'s build result."""
    spec = asdict(artifact)
    spec.pop("description")  # documentation only: editing it must not rebuild
    payload = {
        "format": KEY_FORMAT,
        "release": manifest.release,
        "commit": commit,
        "spec": spec,
        "images": list(image_refs(manifest, artifact, commit)) if artifact.type == "image" else [],
        "dependencies": {name: dependency_keys[name] for name in artifact.dependencies},
        "builder": builder_id,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _record_path(state_dir: Path, artifact: str) -> Path:
    return state_dir / (file_stem(artifact) + ".json")


def save(state_dir: Path, artifact: str, key: str, output: ArtifactOutput) -> None:
    """Remember a successful build of ``artifact`` under ``key``."""
    data = {
        "key": key,
        "files": [asdict(f) for f in output.files],
        "images": [{"id": i.id, "refs": list(i.refs), "labels": dict(i.labels)} for i in output.images],
    }
    write_atomic(_record_path(state_dir, artifact), (json.dumps(data, indent=2) + "\n").encode())


def forget(state_dir: Path, artifact: str) -> None:
    """Drop the record (the artifact is being rebuilt or failed)."""
    _record_path(state_dir, artifact).unlink(missing_ok=True)


def lookup(state_dir: Path, artifact: str, key: str, *, release_dir: Path,
           engine: Engine | None) -> tuple[ArtifactOutput | None, str]:
    """The recorded output when ``key`` matches and it is intact, else (None, why)."""
    path = _record_path(state_dir, artifact)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "never built"
    except (OSError, ValueError):
        return None, "unreadable cache record"
    if data.get("key") != key:
        return None, "inputs changed"
    files = tuple(FileRecord(**f) for f in data.get("files", []))
    if (damaged := first_damaged(release_dir, files)) is not None:
        return None, f"{damaged} is missing or changed"
    images = tuple(
        ImageRecord(id=i["id"], refs=tuple(i["refs"]), labels=tuple(sorted(i.get("labels", {}).items())))
        for i in data.get("images", [])
    )
    if images:
        if engine is None:
            return None, "no Docker engine to check the image"
        for image in images:
            for ref in image.refs:
                if engine.image_id(ref) != image.id:
                    return None, f"image {ref} is missing or was replaced"
            if engine.image_labels(image.id).get(KEY_LABEL) != key:
                return None, f"image {image.id[:19]} does not carry the cache key"
    return ArtifactOutput(files=files, images=images), "cached"
