"""The release record, ``dist/<release>/release.json``: its one reader and one writer.

release.json is untrusted input (DESIGN.md): anyone who can write ``dist/`` can edit
it, and disks damage files. ``read`` accepts exactly the shape ``write`` produces, as
frozen dataclasses, and refuses anything else with one message naming the file and
the field (``dist/v1/release.json: artifacts.felix.files[0].sha256: expected 64 hex
digits``), so no reader ever trips over a wrong type. Whether the record is *true*
(its files, its manifest) is for integrity.py and conformance.py to say.

Which statuses count as built is defined here, once (``BUILT``).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from orchestrator import hints, kinds
from orchestrator.fileops import InputFileError, fsync_directory, read_limited, write_atomic, write_error
from orchestrator.gitinput import COMMIT
from orchestrator.imageref import IMAGE_REF_RE
from orchestrator.outputs import FileRecord
from orchestrator.recordfields import (
    FieldReader,
    RecordFieldError,
    ReleaseRecordError,
    kind,
    load_json,
    safe_relative,
    shown,
)

__all__ = ["RecordFieldError", "ReleaseRecordError", "load_json", "safe_relative"]

# 2: files carry their mode, the record names the orchestrator's version, and the
# release may be "building" (a run is replacing its files).
FORMAT = 2
FILENAME = "release.json"
SUMS = "SHA256SUMS"
PROVENANCE = "provenance.json"
ENVELOPE = "provenance.intoto.jsonl"  # the signed statement (DSSE), when a signing key is configured

# ok: built here; cached: found intact in this workspace; restored: from the remote cache.
ArtifactStatus = Literal["ok", "cached", "restored", "failed", "skipped", "not-started"]
# partial: one shard's part of a release (--shard K/N), never a whole release.
ReleaseStatus = Literal["ok", "failed", "incomplete", "building", "partial"]
ARTIFACT_STATUSES: tuple[ArtifactStatus, ...] = ("ok", "cached", "restored", "failed", "skipped", "not-started")
RELEASE_STATUSES: tuple[ReleaseStatus, ...] = ("ok", "failed", "incomplete", "building", "partial")
# The one definition: an artifact whose outputs are part of the release.
BUILT: frozenset[str] = frozenset({"ok", "cached", "restored"})

HEX64 = re.compile(r"[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_RELEASE = re.compile(r"[A-Za-z0-9._+-]+")
_SHARD = re.compile(r"[1-9][0-9]{0,2}/[1-9][0-9]{0,2}")


def is_built(status: str) -> bool:
    return status in BUILT


def release_status(statuses: set[str] | frozenset[str]) -> ReleaseStatus:
    """The release's status from its artifacts': ok only when every one is built."""
    if statuses <= BUILT:
        return "ok"
    return "failed" if "failed" in statuses else "incomplete"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pushed:
    """A reference that landed in a registry: the registry's digest, the image pushed."""

    digest: str
    id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    id: str
    refs: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()
    pushed: Mapping[str, Pushed] = field(default_factory=dict)  # ref -> where it landed, in push order
    # RootFS diff ids, bottom first; () in records written before they were recorded.
    layers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactEntry:
    repo: str
    type: str  # a registered kind (orchestrator.kinds)
    status: ArtifactStatus
    files: tuple[FileRecord, ...] = ()
    images: tuple[Image, ...] = ()
    duration: float = 0.0
    log: str | None = None
    error: str | None = None
    cache_key: str | None = None
    carried_over: bool = False
    restored_from: str | None = None  # restored: the remote cache entry (repository@digest)

    @property
    def built(self) -> bool:
        return self.status in BUILT


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoEntry:
    url: str  # credentials redacted
    ref: str
    commit: str
    commit_time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestEntry:
    path: str
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    release: str
    status: ReleaseStatus
    manifest: ManifestEntry
    started: str
    finished: str
    orchestrator: str  # the version that wrote the record (provenance's builder version)
    repos: Mapping[str, RepoEntry] = field(default_factory=dict)
    artifacts: Mapping[str, ArtifactEntry] = field(default_factory=dict)
    format: int = FORMAT
    shard: str | None = None  # "K/N" for one shard's partial record

    def built(self) -> dict[str, ArtifactEntry]:
        """The artifacts whose outputs belong to the release, in record order."""
        return {name: a for name, a in self.artifacts.items() if a.built}


class OtherFormatError(RecordFieldError):
    """A record written by another version of the orchestrator (another ``format``)."""


# -- reading ------------------------------------------------------------------------------


def read(release_dir: Path, *, build: str | None = None) -> Release:
    """The record of ``release_dir``; ReleaseRecordError when it is absent or not exactly
    a release record. ``build`` is the command that builds it (said when it is absent:
    with the manifest, so that the hint never builds another release)."""
    path = release_dir / FILENAME
    if not path.exists() and not path.is_symlink():
        build = build or hints.command("build", "--all")
        raise ReleaseRecordError(f"{path} does not exist", hint=f"build the release first: {build}")
    return parse_bytes(_read_bytes(path), str(path))


def read_previous(release_dir: Path) -> Release | None:
    """The record a build replaces: None when there is none, or when an older orchestrator
    wrote it (nothing is carried over from it); ReleaseRecordError when it is damaged."""
    path = release_dir / FILENAME
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return parse_bytes(_read_bytes(path), str(path))
    except OtherFormatError:
        return None


def _read_bytes(path: Path) -> bytes:
    if path.is_symlink():  # a record is written in place, never linked from elsewhere
        raise ReleaseRecordError(f"{path} is a symbolic link (-> {os.readlink(path)}); a release record is a "
                                 "regular file", hint=_HINT.format(path=path))
    try:
        return read_limited(path)
    except InputFileError as e:
        raise ReleaseRecordError(f"{path}: {e.strerror}; a release record is a small regular file",
                                 hint=_HINT.format(path=path)) from e
    except OSError as e:
        raise ReleaseRecordError(f"{path} cannot be read: {e.strerror}", hint=_HINT.format(path=path)) from e


_HINT = "it was edited or damaged: remove it ({path}) and build the release again"


def parse_bytes(data: bytes, file: str) -> Release:
    """Parse and type-check a release.json's bytes; ``file`` names it in messages."""
    hint = _HINT.format(path=file)
    return ReleaseReader(file, hint).release(load_json(data, file, hint))


class ReleaseReader(FieldReader):
    """The fields of a release record (and of the files and images a cache record lists)."""

    def release(self, raw: Any) -> Release:
        data = self.fields(raw, "", ("format", "release", "status", "manifest", "started", "finished",
                                     "orchestrator", "repos", "artifacts"), ("shard",))
        version = self.integer(data["format"], "format")
        if version != FORMAT:
            raise OtherFormatError(self.file, "format", f"{version} is not the record format this orchestrator "
                                   f"reads ({FORMAT})", hint="build the release again with this orchestrator")
        manifest = self.fields(data["manifest"], "manifest", ("path", "sha256"))
        repos = self.mapping(data["repos"], "repos")
        artifacts = self.mapping(data["artifacts"], "artifacts")
        return Release(
            release=self.string(data["release"], "release", _RELEASE, "a release name ([A-Za-z0-9._+-])"),
            status=self.choice(data["status"], "status", RELEASE_STATUSES),  # type: ignore[arg-type]
            manifest=ManifestEntry(path=self.string(manifest["path"], "manifest.path"),
                                   sha256=self.string(manifest["sha256"], "manifest.sha256", HEX64,
                                                      "64 hex digits")),
            started=self.string(data["started"], "started", _TIME, "a UTC time (2018-01-01T00:00:00Z)"),
            finished=self.string(data["finished"], "finished", _TIME, "a UTC time (2018-01-01T00:00:00Z)"),
            orchestrator=self.string(data["orchestrator"], "orchestrator"),
            repos={name: self.repo(value, f"repos.{name}") for name, value in repos.items()},
            artifacts={name: self.artifact(value, f"artifacts.{name}") for name, value in artifacts.items()},
            shard=self.optional_string(data.get("shard"), "shard", _SHARD, "K/N, e.g. 1/2"),
        )

    def repo(self, raw: Any, where: str) -> RepoEntry:
        data = self.fields(raw, where, ("url", "ref", "commit", "commit_time"))
        return RepoEntry(url=self.string(data["url"], f"{where}.url"),
                         ref=self.string(data["ref"], f"{where}.ref"),
                         commit=self.string(data["commit"], f"{where}.commit", COMMIT, "40 hex digits"),
                         commit_time=self.integer(data["commit_time"], f"{where}.commit_time"))

    def artifact(self, raw: Any, where: str) -> ArtifactEntry:
        data = self.fields(raw, where, ("repo", "type", "status", "files", "images", "duration", "log", "error",
                                        "cache_key"), ("carried_over", "restored_from"))
        duration = data["duration"]
        if type(duration) not in (int, float) or not math.isfinite(duration) or duration < 0:
            self.fail(f"{where}.duration", f"expected a number of seconds, got {shown(duration)}")
        carried = data.get("carried_over", False)
        if not isinstance(carried, bool):
            self.fail(f"{where}.carried_over", f"expected true or false, got {kind(carried)}")
        return ArtifactEntry(
            repo=self.string(data["repo"], f"{where}.repo"),
            type=self.choice(data["type"], f"{where}.type", kinds.names()),
            status=self.choice(data["status"], f"{where}.status", ARTIFACT_STATUSES),  # type: ignore[arg-type]
            files=tuple(self.file_record(item, f"{where}.files[{i}]")
                        for i, item in enumerate(self.array(data["files"], f"{where}.files"))),
            images=tuple(self.image(item, f"{where}.images[{i}]")
                         for i, item in enumerate(self.array(data["images"], f"{where}.images"))),
            duration=float(duration),
            log=self.optional_string(data["log"], f"{where}.log"),
            # A failed command's output: shown as captured, its colours included.
            error=self.optional_string(data["error"], f"{where}.error", plain=False),
            cache_key=self.optional_string(data["cache_key"], f"{where}.cache_key", HEX64, "64 hex digits or null"),
            carried_over=carried,
            restored_from=self.optional_string(data.get("restored_from"), f"{where}.restored_from"),
        )

    def file_record(self, raw: Any, where: str) -> FileRecord:
        data = self.fields(raw, where, ("path", "sha256", "size", "mode"))
        path = self.string(data["path"], f"{where}.path")
        if not safe_relative(path):
            self.fail(f"{where}.path", f"expected a relative path inside the release directory, got {shown(path)}")
        return FileRecord(path=path,
                          sha256=self.string(data["sha256"], f"{where}.sha256", HEX64, "64 hex digits"),
                          size=self.integer(data["size"], f"{where}.size"),
                          mode=self.integer(data["mode"], f"{where}.mode", maximum=0o7777))

    def image(self, raw: Any, where: str) -> Image:
        data = self.fields(raw, where, ("id", "refs", "labels"), ("pushed", "layers"))
        labels = self.mapping(data["labels"], f"{where}.labels")
        pushed = self.mapping(data.get("pushed", {}), f"{where}.pushed")
        layers = self.array(data.get("layers", []), f"{where}.layers")
        return Image(
            id=self.string(data["id"], f"{where}.id", _IMAGE_ID, "sha256: and 64 hex digits"),
            refs=tuple(self.string(ref, f"{where}.refs[{i}]", IMAGE_REF_RE, "an image reference")
                       for i, ref in enumerate(self.array(data["refs"], f"{where}.refs"))),
            labels=tuple((key, self.string(value, f"{where}.labels.{key}", plain=False))
                         for key, value in labels.items()),
            pushed={self.string(ref, f"{where}.pushed", IMAGE_REF_RE, "image references as keys"):
                    self.pushed(value, f"{where}.pushed.{ref}") for ref, value in pushed.items()},
            layers=tuple(self.string(layer, f"{where}.layers[{i}]", _IMAGE_ID, "sha256: and 64 hex digits")
                         for i, layer in enumerate(layers)),
        )

    def pushed(self, raw: Any, where: str) -> Pushed:
        data = self.fields(raw, where, ("digest", "id"))
        return Pushed(digest=self.string(data["digest"], f"{where}.digest", _IMAGE_ID, "sha256: and 64 hex digits"),
                      id=self.string(data["id"], f"{where}.id", _IMAGE_ID, "sha256: and 64 hex digits"))


# -- writing ------------------------------------------------------------------------------


def to_json(release: Release) -> dict[str, Any]:
    """The JSON document of ``release``, keys in a fixed order."""
    return {
        "format": release.format,
        "release": release.release,
        "status": release.status,
        "manifest": {"path": release.manifest.path, "sha256": release.manifest.sha256},
        "started": release.started,
        "finished": release.finished,
        "orchestrator": release.orchestrator,
        "repos": {name: {"url": r.url, "ref": r.ref, "commit": r.commit, "commit_time": r.commit_time}
                  for name, r in release.repos.items()},
        "artifacts": {name: _artifact_json(a) for name, a in release.artifacts.items()},
        **({"shard": release.shard} if release.shard else {}),
    }


def _artifact_json(artifact: ArtifactEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "repo": artifact.repo,
        "type": artifact.type,
        "status": artifact.status,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "mode": f.mode} for f in artifact.files],
        "images": [_image_json(image) for image in artifact.images],
        "duration": round(artifact.duration, 3),
        "log": artifact.log,
        "error": artifact.error,
        "cache_key": artifact.cache_key,
    }
    if artifact.carried_over:
        data["carried_over"] = True
    if artifact.restored_from:
        data["restored_from"] = artifact.restored_from
    return data


def _image_json(image: Image) -> dict[str, Any]:
    data: dict[str, Any] = {"id": image.id, "refs": list(image.refs), "labels": dict(image.labels)}
    if image.layers:
        data["layers"] = list(image.layers)
    if image.pushed:
        data["pushed"] = {ref: {"digest": p.digest, "id": p.id} for ref, p in image.pushed.items()}
    return data


def encode(release: Release) -> bytes:
    return (json.dumps(to_json(release), indent=2) + "\n").encode()


def sums_text(release: Release) -> str:
    """SHA256SUMS: one ``sha256  path`` line per file of a built artifact, sorted by path."""
    sums = sorted({(f.path, f.sha256) for a in release.built().values() for f in a.files})
    return "".join(f"{sha}  {path}\n" for path, sha in sums)


def write(release_dir: Path, release: Release) -> None:
    """Write release.json (atomically and durably)."""
    write_atomic(release_dir / FILENAME, encode(release))


def invalidate(release_dir: Path) -> None:
    """Make the record stop vouching for the files, before a run replaces any of them.

    In this order, so that at every instant a record that says ok matches its files:
    release.json is rewritten with status "building" (kept otherwise: what earlier runs
    built and pushed is still known), or removed when it is damaged; then SHA256SUMS and
    provenance.json and its signature, which would vouch for the old bytes too, are removed.
    """
    path = release_dir / FILENAME
    try:
        try:
            current = read_previous(release_dir)
        except ReleaseRecordError:
            current = None
            path.unlink(missing_ok=True)  # damaged: no strict reader believes it; nobody else should either
        if current is not None and current.status != "building":
            write(release_dir, replace(current, status="building"))
        elif current is None and path.is_file():
            path.unlink()  # another format: a reader of that format would still take it for ok
        for name in (SUMS, PROVENANCE, ENVELOPE):
            (release_dir / name).unlink(missing_ok=True)
        if release_dir.is_dir():
            fsync_directory(release_dir)
    except OSError as e:
        raise write_error(path, e) from e
