"""The container-engine seam: what the orchestrator asks of an engine, and what it gets back.

Everything outside ``orchestrator.engine`` is typed against ``ContainerEngine``; the
docker-py implementation (``orchestrator.engine.dockerpy.Engine``) is one engine, the
tests' fake client drives another through it. Nothing here needs the engine to be on
this machine: a builder container gets its checkout and returns its outputs through
the API (``orchestrator.treecopy``), never through a bind mount.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

Log = Callable[[str], None]
CONTAINER_LABEL = "orchestrator.container"  # one container's own token (engine.run)
MANAGED_LABEL = "orchestrator.managed"  # `docker ps -a --filter label=...` finds leftovers after a kill -9


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelledContainer:
    """A container found by label: enough to stop it and to say which it was."""

    id: str
    name: str
    image: str
    labels: Mapping[str, str]

    def describe(self) -> str:
        return f"container {self.name} ({self.id[:12]}, image {self.image})"


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltImage:
    """An image the engine built: its full id (``sha256:...``) and every tag applied."""

    id: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInfo:
    """What one inspection of an image says: its full id, the references that name it
    (as the engine writes them: ``calico/node:v3.2.0``, ``busybox:latest``), its labels."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]


class ContainerEngine(Protocol):
    """Build, run, inspect, tag, push and cancel. Safe to share between threads.

    Errors are those of ``orchestrator.engine.errors``; a lost engine is
    DockerUnavailableError; a cancelled step is Cancelled (exit 130)."""

    def build_image(self, *, context: Path, dockerfile: str, tags: Sequence[str], buildargs: Mapping[str, str],
                    target: str | None, labels: Mapping[str, str], network_mode: str, log: Log,
                    deadline: float | None = None) -> BuiltImage:
        """Build ``dockerfile`` (relative to ``context``), tagged with every tag."""

    def run(self, *, image: str, command: Sequence[str] | str, workdir: Path, env: Mapping[str, str],
            network_mode: str, log: Log, deadline: float | None = None) -> None:
        """Run ``command`` in a new container of ``image`` on a copy of ``workdir``; the
        copy comes back only when the command succeeds."""

    def image_id(self, ref: str) -> str | None:
        """The full id of image ``ref``, or None when the engine does not have it."""

    def image_labels(self, ref: str) -> dict[str, str]:
        """The labels of image ``ref``; ImageMissing when the engine does not have it."""

    def image_layers(self, ref: str) -> tuple[str, ...]:
        """The diff ids of image ``ref``'s root filesystem layers (``RootFS.Layers``, each
        ``sha256:...``: the digest of the uncompressed layer tar), bottom first;
        ImageMissing when the engine does not have it."""

    def inspect_image(self, ref: str) -> ImageInfo | None:
        """Id, tags and labels of image ``ref`` in one call; None when the engine does not have it."""

    def tag(self, image: str, ref: str) -> None:
        """Tag ``image`` (an id or a reference) as ``ref``."""

    def pushed_digests(self, image: str) -> frozenset[str]:
        """The registry digests the engine records for ``image``."""

    def import_rootfs(self, tar_path: Path, repository: str, tag: str, *, changes: Sequence[str] = ()) -> str:
        """Make image ``repository:tag`` from a root filesystem tar; returns its id."""

    def push(self, ref: str, *, log: Log, on_bytes: Callable[[int, int], None] | None = None) -> str:
        """Push image ``ref``; returns the registry's digest (``sha256:...``)."""

    def pull(self, ref: str, *, log: Log) -> str:
        """Pull image ``ref`` (``repository@sha256:...`` or ``repository:tag``); returns its id."""

    def untag(self, ref: str) -> None:
        """Remove the reference ``ref`` (the image stays while other references or digests hold it)."""

    def cancel_all(self, *, wait: float = ...) -> None:
        """Stop every build and container under way; later calls raise Cancelled."""

    def labelled(self, label: str, value: str | None = None) -> list[LabelledContainer]:
        """Every container (running or not) with ``label`` (set to ``value`` when given)."""

    def remove(self, containers: Sequence[LabelledContainer]) -> list[str]:
        """Kill and remove ``containers``; describes each one that is gone afterwards."""

    def stop_labelled(self, label: str, value: str) -> list[str]:
        """Kill and remove every container with ``label=value``; describes those stopped."""
