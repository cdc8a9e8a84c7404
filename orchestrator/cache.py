"""Content-addressed skipping: an artifact whose inputs did not change is not rebuilt.

An artifact's cache key hashes everything its result depends on: its canonical spec
(its kind's settings: command, outputs, env, Dockerfile settings...; and what the kind
adds, such as rendered image references), the release name (commands see it as
$RELEASE), its repository's commit, ref and URL, the keys of everything it requires or
stages, the builder image's id, the host's fingerprint for commands run on the host,
and a format version.
The last successful build of each artifact is recorded under
``.build/state/<release>/``; a matching key with outputs still intact (files' sha256,
images present and labelled with the key) means the artifact is reported as cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from orchestrator import filestamp, kinds, record
from orchestrator.builders.image import KEY_LABEL
from orchestrator.fileops import read_limited, write_atomic
from orchestrator.imageref import familiar
from orchestrator.integrity import damage
from orchestrator.model import Artifact, Manifest, file_stem
from orchestrator.outputs import ArtifactOutput, FileRecord, ImageRecord
from orchestrator.record import ReleaseRecordError
from orchestrator.redact import redact_url

if TYPE_CHECKING:
    from orchestrator.engine.protocol import ContainerEngine

# Bump when the meaning of a key changes (what goes into it, or how builders use it).
# 2: the repository's ref and URL (commands see $GIT_REF, archives and labels name them).
# 3: settings are nested per kind, the kind adds its own inputs, and the host's fingerprint.
KEY_FORMAT = 3
__all__ = ["KEY_LABEL", "ArtifactCache", "Found", "Layered", "LocalCache", "Refused", "cache_key", "forget", "lookup",
           "save"]
# A state record lists one artifact's files and images: kilobytes.
MAX_STATE_BYTES = 1024 * 1024


def cache_key(manifest: Manifest, artifact: Artifact, *, commit: str, dependency_keys: Mapping[str, str],
              builder_id: str | None, host: Mapping[str, Any] | None = None) -> str:
    """The sha256 of everything that determines ``artifact``'s build result."""
    spec = asdict(artifact)  # the kind's own settings included, as a nested mapping
    spec.pop("description")  # documentation only: editing it must not rebuild
    spec.pop("timeout")  # a limit on the build, not an input of it
    repo = manifest.repos[artifact.repo]
    payload = {
        "format": KEY_FORMAT,
        "release": manifest.release,
        "commit": commit,
        # The same commit under another ref is another build: $GIT_REF, a library's archive
        # name and prefix, an image's source label. The URL without its credentials.
        "ref": repo.ref,
        "url": redact_url(repo.url),
        "spec": spec,
        "kind": kinds.get(artifact.type).key_inputs(manifest, artifact, commit),
        "dependencies": {name: dependency_keys[name] for name in artifact.dependencies},
        "builder": builder_id,
        "host": host,  # hostprint.fingerprint of a command run on the host
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Found(NamedTuple):
    """What a cache lookup found: the outputs of a build under the key, or why not."""

    output: ArtifactOutput | None
    why: str  # "cached", or why the artifact must be built ("inputs changed", ...)
    where: str | None = None  # None: in this workspace already; else the remote entry it comes from


class Refused(Exception):
    """A restore that found the outputs not as the cache entry says (a damaged blob, an
    image with another id): nothing of it was published; the artifact is built instead."""


class ArtifactCache(Protocol):
    """Where built outputs are found again by cache key: the seam a shared cache plugs into.

    ``lookup`` says whether a build under ``key`` can be had; ``restore`` puts its
    outputs into the release (files into the release directory, images into the
    engine) and returns them; ``store`` keeps a fresh build's outputs; ``forget``
    drops what is kept for an artifact that is being rebuilt or failed. None of them
    raises for a cache that is damaged or unreachable: that is a miss, with the reason
    (``restore`` raises Refused); only a cache the run requires (``--require-cache``)
    raises an OrchestratorError, which fails the artifact.
    """

    def lookup(self, artifact: str, key: str) -> Found: ...

    def restore(self, artifact: str, key: str, found: Found) -> ArtifactOutput: ...

    def store(self, artifact: str, key: str, output: ArtifactOutput, duration: float = 0.0) -> None: ...

    def forget(self, artifact: str) -> None: ...


class LocalCache:
    """The outputs already in this workspace: the last successful build of each artifact
    is recorded under ``.build/state/<release>/``; it is a hit when the key matches and
    the outputs are still intact in the release directory and the engine. Restoring
    has nothing to copy."""

    def __init__(self, state_dir: Path, *, release_dir: Path, engine: ContainerEngine | None,
                 trust: bytes | None = None) -> None:
        """``trust``: the stamp key (``stamps.key``) that signs the stat data of files
        already hashed, so that unchanged files are not read again; None: hash them all."""
        self.state_dir, self.release_dir, self.engine, self.trust = state_dir, release_dir, engine, trust

    def lookup(self, artifact: str, key: str) -> Found:
        return Found(*lookup(self.state_dir, artifact, key, release_dir=self.release_dir, engine=self.engine,
                             trust=self.trust))

    def restore(self, artifact: str, key: str, found: Found) -> ArtifactOutput:
        if found.output is None:
            raise ValueError(f"{artifact}: nothing to restore ({found.why})")
        return found.output  # in place already: lookup checked every file and image

    def store(self, artifact: str, key: str, output: ArtifactOutput, duration: float = 0.0) -> None:
        save(self.state_dir, artifact, key, output)

    def forget(self, artifact: str) -> None:
        forget(self.state_dir, artifact)


class Layered:
    """This workspace's cache first, then a shared one (``remotecache.RemoteCache``).

    A build is stored in both (the shared one decides whether it writes); what is
    restored from the shared one is recorded locally too, so the next run here finds it
    cached without asking the registry. Forgetting is local only: a shared entry is never
    deleted because one machine rebuilds."""

    def __init__(self, local: ArtifactCache, shared: ArtifactCache) -> None:
        self.local, self.shared = local, shared

    def lookup(self, artifact: str, key: str) -> Found:
        found = self.local.lookup(artifact, key)
        if found.output is not None:
            return found
        shared = self.shared.lookup(artifact, key)
        return shared if shared.output is not None else Found(None, f"{found.why}; {shared.why}")

    def restore(self, artifact: str, key: str, found: Found) -> ArtifactOutput:
        if found.where is None:
            return self.local.restore(artifact, key, found)
        output = self.shared.restore(artifact, key, found)
        self.local.store(artifact, key, output)
        return output

    def store(self, artifact: str, key: str, output: ArtifactOutput, duration: float = 0.0) -> None:
        # Shared first: when it must succeed (--require-cache) and fails, this workspace does
        # not remember the build either, so the next run builds (and stores) it again.
        self.shared.store(artifact, key, output, duration)
        self.local.store(artifact, key, output, duration)

    def forget(self, artifact: str) -> None:
        self.local.forget(artifact)

    def available(self) -> bool:
        """Whether the shared cache can still be asked (not down, credentials not refused)."""
        return available(self.shared)


def available(store: ArtifactCache | None) -> bool:
    """Whether ``store`` can still be asked: a cache that knows it cannot (an unreachable
    registry) says so through an ``available()`` method or a ``down`` reason."""
    if store is None:
        return False
    check = getattr(store, "available", None)
    if callable(check):
        return bool(check())
    return getattr(store, "down", None) is None


def _record_path(state_dir: Path, artifact: str) -> Path:
    return state_dir / (file_stem(artifact) + ".json")


def save(state_dir: Path, artifact: str, key: str, output: ArtifactOutput) -> None:
    """Remember a successful build of ``artifact`` under ``key``."""
    data = {
        "key": key,
        "files": [asdict(f) for f in output.files],
        "images": [{"id": i.id, "refs": list(i.refs), "labels": dict(i.labels), "layers": list(i.layers)}
                   for i in output.images],
    }
    write_atomic(_record_path(state_dir, artifact), (json.dumps(data, indent=2) + "\n").encode())


def forget(state_dir: Path, artifact: str) -> None:
    """Drop the record (the artifact is being rebuilt or failed)."""
    filestamp.forget(_record_path(state_dir, artifact))
    _record_path(state_dir, artifact).unlink(missing_ok=True)


def lookup(state_dir: Path, artifact: str, key: str, *, release_dir: Path,
           engine: ContainerEngine | None, trust: bytes | None = None) -> tuple[ArtifactOutput | None, str]:
    """The recorded output when ``key`` matches and it is intact, else (None, why).

    A state record is untrusted like everything under .build/: one that is not a
    small regular file of exactly the shape ``save`` writes means "rebuild", with the
    reason, never an error. ``trust`` (the stamp key) lets files whose stat data are as
    signed after their last hashing go unread (``orchestrator.filestamp``).
    """
    path = _record_path(state_dir, artifact)
    try:
        data = read_limited(path, limit=MAX_STATE_BYTES)
    except FileNotFoundError:
        return None, "never built"
    except OSError as e:
        return None, f"unreadable cache record {path}: {e.strerror}"
    try:
        recorded_key, files, images = _parse(data, str(path))
    except ReleaseRecordError as e:
        return None, f"unreadable cache record: {e.message}"
    if recorded_key != key:
        return None, "inputs changed"
    # Files whose stat data are as signed after their last hashing are intact; the others
    # are hashed, and their stat data kept for next time (filestamp).
    signed = filestamp.trusted(path, trust, key, files) if trust is not None else {}
    if any(signed.get(f.path) is None or filestamp.current(release_dir, f) != signed[f.path] for f in files):
        taken = filestamp.now(path) if trust is not None else None
        seen = {f.path: filestamp.current(release_dir, f) for f in files}
        for file in files:
            if (why := damage(release_dir, file)) is not None:
                return None, f"{file.path} is {why}" if why == "missing" else f"{file.path} changed: {why}"
        if trust is not None and all(seen.values()):
            filestamp.keep(path, trust, key, files, {p: s for p, s in seen.items() if s is not None}, taken)
    if images:
        if engine is None:
            return None, "no Docker engine to check the image"
        for image in images:
            # One inspection per image answers for all its references and its label; a
            # reference the engine spells differently is looked up on its own.
            info = engine.inspect_image(image.id)
            if info is None or info.id != image.id:
                return None, f"image {(image.refs or (image.id,))[0]} is missing or was replaced"
            for ref in image.refs:
                if familiar(ref) not in info.tags and engine.image_id(ref) != image.id:
                    return None, f"image {ref} is missing or was replaced"
            if info.labels.get(KEY_LABEL) != key:
                return None, f"image {image.id[:19]} does not carry the cache key"
        # A record saved before layers were recorded: the engine says (same id, same layers).
        images = tuple(i if i.layers else replace(i, layers=engine.image_layers(i.id)) for i in images)
    return ArtifactOutput(files=files, images=images), "cached"


def _parse(data: bytes, file: str) -> tuple[str, tuple[FileRecord, ...], tuple[ImageRecord, ...]]:
    reader = record.ReleaseReader(file, hint="")
    raw = reader.fields(record.load_json(data, file, ""), "", ("key", "files", "images"))
    key = reader.string(raw["key"], "key", record.HEX64, "64 hex digits")
    files = tuple(reader.file_record(item, f"files[{i}]") for i, item in enumerate(reader.array(raw["files"], "files")))
    images = tuple(reader.image(item, f"images[{i}]") for i, item in enumerate(reader.array(raw["images"], "images")))
    return key, files, tuple(ImageRecord(id=i.id, refs=i.refs, labels=i.labels, layers=i.layers) for i in images)
