"""What a build produces and what it builds from: the records every layer passes around.

Pure data (frozen dataclasses); reading and writing them on disk is someone else's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    """One published file: its path relative to dist/<release>/, sha256, size and mode."""

    path: str
    sha256: str
    size: int
    mode: int = 0o644  # permission bits as published (0o644 or 0o755)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRecord:
    id: str
    refs: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()
    # The diff ids of its root filesystem (RootFS.Layers), bottom first: its content,
    # comparable across builds whose image ids differ (ids hash the creation time too).
    layers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactOutput:
    files: tuple[FileRecord, ...] = ()
    images: tuple[ImageRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """The pinned checkout an artifact builds from."""

    repo: str
    url: str  # redacted
    ref: str
    commit: str
    commit_time: int
    path: Path
    # Brings ``path`` to the commit, clean; None when it is there already. Called
    # once, only before an artifact of the repo is really built (not when cached).
    prepare: Callable[[], None] | None = None
