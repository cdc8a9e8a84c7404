"""The docker-py engine: ``Engine`` implements ``ContainerEngine`` over one docker-py client.

Builds live in ``builds``, builder containers in ``runs``, what they share (the client,
the cancel state, turning docker-py's errors into ours) in ``connection``. The client is
injected (tests pass a ``FakeDockerClient``); every ``log`` callback gets one complete,
cleaned line at a time, in the calling thread.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from orchestrator.engine import socketapi
from orchestrator.engine.builds import ImageBuilds
from orchestrator.engine.connection import (
    START_HINT,
    DockerClient,
    connection_errors,
    docker_errors,
    explain,
    quietly,
    reason,
)
from orchestrator.engine.errors import EngineError, ImageMissing, PushFailed, push_problem
from orchestrator.engine.protocol import ContainerEngine, ImageInfo, Log
from orchestrator.engine.runs import ContainerRuns
from orchestrator.engine.stream import DIGEST, Output, chunk_error, layer_progress, redact_text
from orchestrator.errors import DockerUnavailableError
from orchestrator.imageref import split_tag

# How long cancel_all keeps killing the RUN step of a build: the engine announces a step
# ("Running in <id>") before its container runs, and ignores a kill sent before it does.
CANCEL_SECONDS = 20.0


class Engine(ImageBuilds, ContainerRuns):
    """Builds images and runs commands in containers; safe to share between threads."""

    @classmethod
    def from_env(cls, *, timeout: float = 600, workspace: Path | None = None) -> Engine:
        """Connect to the engine at DOCKER_HOST (or the default socket) and ping it.

        ``workspace`` labels the containers this engine starts (see ``container_labels``)."""
        return cls(_docker_client(timeout), workspace=workspace)

    @classmethod
    def connect(cls, *, timeout: float = 600, workspace: Path | None = None) -> Engine:
        """As ``from_env``, importing docker-py only when something must be done: an
        engine on a local unix socket is pinged and asked about images over the socket
        itself (``socketapi``), and docker-py connects on the first build, run or push."""
        path = socketapi.local_socket(os.environ)
        if path is None:
            return cls.from_env(timeout=timeout, workspace=workspace)
        light = socketapi.SocketAPI(path, timeout=min(timeout, 60.0))
        try:
            light.ping()
        except (OSError, socketapi.ReplyError) as e:
            where = os.environ.get("DOCKER_HOST") or f"unix://{path} (the default socket)"
            raise _unreachable(where, e.strerror if isinstance(e, OSError) and e.strerror else str(e)) from e
        return cls(None, workspace=workspace, light=light, connect=functools.partial(_docker_client, timeout))

    def inspect_image(self, ref: str) -> ImageInfo | None:
        """Id, tags and labels of image ``ref`` in one call; None when the engine does not have it."""
        def over_socket(light: socketapi.SocketAPI) -> ImageInfo | None:
            try:
                return _image_info(json.loads(light.get_image(ref)))
            except socketapi.ReplyError as e:
                if e.status == 404:
                    return None
                raise

        what = f"inspecting image {ref}"
        if self._light is not None:
            return self._ask(what, over_socket)
        errors = docker_errors()
        with self._talking(what):
            try:
                return _image_info(self._client.images.get(ref).attrs)
            except errors.ImageNotFound:
                return None

    def image_id(self, ref: str) -> str | None:
        """The full id of image ``ref``, or None when the engine does not have it."""
        errors = docker_errors()
        with self._talking(f"looking up image {ref}"):
            try:
                return str(self._client.images.get(ref).id)
            except errors.ImageNotFound:
                return None

    def tag(self, image: str, ref: str) -> None:
        """Tag ``image`` (an id or a reference) as ``ref``; a ``ref`` naming another image moves to this one."""
        errors = docker_errors()
        with self._talking(f"tagging {image} as {ref}"):
            try:
                self._client.api.tag(image, *split_tag(ref))
            except errors.ImageNotFound as e:
                raise ImageMissing(image) from e
            except errors.APIError as e:
                raise EngineError(f"tagging image {image} as {ref} failed: {explain(e)}") from e

    def image_labels(self, ref: str) -> dict[str, str]:
        """The labels of image ``ref``; ImageMissing when the engine does not have it."""
        errors = docker_errors()
        with self._talking(f"inspecting image {ref}"):
            try:
                return dict(self._client.images.get(ref).labels or {})
            except errors.ImageNotFound as e:
                raise ImageMissing(ref) from e

    def image_layers(self, ref: str) -> tuple[str, ...]:
        """The diff ids of image ``ref``'s layers (``RootFS.Layers``), bottom first: what the
        image holds, whatever its configuration (labels, creation time) says.
        ImageMissing when the engine does not have it."""
        errors = docker_errors()
        with self._talking(f"inspecting image {ref}"):
            try:
                rootfs = self._client.images.get(ref).attrs.get("RootFS") or {}
            except errors.ImageNotFound as e:
                raise ImageMissing(ref) from e
        layers = rootfs.get("Layers") if isinstance(rootfs, Mapping) else None
        return tuple(str(layer) for layer in layers) if isinstance(layers, list) else ()

    def pushed_digests(self, image: str) -> frozenset[str]:
        """The registry digests the engine records for ``image`` (its RepoDigests, without
        their repository): each is the manifest of this very image as a push or pull saw it.
        ImageMissing when the engine does not have it."""
        errors = docker_errors()
        with self._talking(f"inspecting image {image}"):
            try:
                found = self._client.images.get(image).attrs.get("RepoDigests") or []
            except errors.ImageNotFound as e:
                raise ImageMissing(image) from e
        return frozenset(str(entry).rpartition("@")[2] for entry in found)

    def import_rootfs(self, tar_path: Path, repository: str, tag: str, *, changes: Sequence[str] = ()) -> str:
        """Make image ``repository:tag`` from a root filesystem tar (like `docker import`); returns its id.

        ``changes`` are Dockerfile instructions applied to the image config, e.g. ``ENV PATH=/bin``.
        """
        errors = docker_errors()
        what = f"importing {tar_path} as {repository}:{tag}"
        if not tar_path.is_file():  # docker-py would take the path for a URL and confuse the message
            raise EngineError(f"{what} failed: {tar_path} is not a file")
        with self._talking(what):
            try:
                reply = self._client.api.import_image_from_file(
                    str(tar_path), repository=repository, tag=tag, changes=list(changes) or None
                )
            except errors.APIError as e:
                raise EngineError(f"{what} failed: {explain(e)}") from e
            for line in str(reply).splitlines():
                chunk = json.loads(line) if line.strip() else {}
                if error := chunk_error(chunk):
                    raise EngineError(f"{what} failed: {redact_text(error)}")
                if str(chunk.get("status", "")).startswith("sha256:"):
                    return str(chunk["status"])
            return str(self._client.images.get(f"{repository}:{tag}").id)

    def push(self, ref: str, *, log: Log, on_bytes: Callable[[int, int], None] | None = None) -> str:
        """Push image ``ref``; returns the registry's digest (``sha256:...``).

        Credentials come from the Docker config (``docker login``), so no password passes
        through the orchestrator, its logs or its messages. ``on_bytes(sent, total)`` hears
        the bytes uploaded so far over all layers, as the engine reports them.
        """
        errors = docker_errors()
        out = Output(log)
        digest = None
        layers: dict[str, tuple[int, int]] = {}  # layer id -> (sent, size)
        with self._talking(f"pushing {ref}"):
            try:
                repository, tag = split_tag(ref)
                for chunk in self._client.api.push(repository, tag=tag, stream=True, decode=True):
                    if error := chunk_error(chunk):
                        out.feed(f"ERROR: {error}\n")
                        if "does not exist locally" in error:
                            raise ImageMissing(ref)
                        raise PushFailed(ref, redact_text(error), push_problem(error), out.text)
                    if isinstance(aux := chunk.get("aux"), Mapping) and isinstance(aux.get("Digest"), str):
                        digest = aux["Digest"]
                    if isinstance(status := chunk.get("status"), str) and "progress" not in chunk:
                        out.feed(f"{chunk['id']}: {status}\n" if "id" in chunk else f"{status}\n")
                    if on_bytes is not None and layer_progress(chunk, layers):
                        on_bytes(sum(sent for sent, _ in layers.values()), sum(size for _, size in layers.values()))
            except errors.APIError as e:
                raise PushFailed(ref, explain(e), "other", out.text) from e
        out.flush()
        if digest is None and (match := DIGEST.search(out.text)):
            digest = match.group(1)
        if digest is None:
            raise PushFailed(ref, "the registry reported no digest", "other", out.text)
        return str(digest)

    def pull(self, ref: str, *, log: Log) -> str:
        """Pull image ``ref`` (by digest: ``repository@sha256:...``); returns its id.

        Credentials come from the Docker config, as for ``push``; the engine checks every
        blob against its digest. Every chunk of the stream is checked for an error."""
        errors = docker_errors()
        out = Output(log)
        repository, _, digest = ref.partition("@")
        tag: str | None = digest
        if not digest:
            repository, tag = split_tag(ref)
        with self._talking(f"pulling {ref}"):
            try:
                for chunk in self._client.api.pull(repository, tag=tag, stream=True, decode=True):
                    if error := chunk_error(chunk):
                        out.feed(f"ERROR: {error}\n")
                        raise EngineError(f"pulling {ref} failed: {redact_text(error)}")
                    if isinstance(status := chunk.get("status"), str) and "progress" not in chunk:
                        out.feed(f"{chunk['id']}: {status}\n" if "id" in chunk else f"{status}\n")
            except errors.APIError as e:
                raise EngineError(f"pulling {ref} failed: {explain(e)}") from e
            out.flush()
            try:
                return str(self._client.images.get(ref).id)
            except errors.ImageNotFound as e:
                raise ImageMissing(ref) from e

    def untag(self, ref: str) -> None:
        """Remove the reference ``ref`` only (``docker rmi --no-prune`` of a tag); gone already is fine."""
        errors = docker_errors()
        with self._talking(f"untagging {ref}"):
            try:
                self._client.images.remove(ref, noprune=True)
            except errors.ImageNotFound:
                pass
            except errors.APIError as e:
                raise EngineError(f"removing the reference {ref} failed: {explain(e)}") from e

    def cancel_all(self, *, wait: float = CANCEL_SECONDS) -> None:
        """Kill and remove every container this engine started that is still running.

        Kills the RUN step of every build under way too, again and again until its build
        has ended or ``wait`` seconds have passed: the engine announces a step before its
        container starts and ignores a kill that comes too early (``wait=0``: one try).
        Safe from a signal handler or another thread. The engine stays cancelled: every
        running and later call raises Cancelled.
        """
        with self._lock:
            self._cancelled = True
            live = list(self._live.values())
            steps = list(self._build_steps)
        # Kill announced RUN steps before cutting the streams: a build whose stream is cut
        # forgets its step, and the engine would remove that container only in its own time.
        for step in steps:
            quietly(functools.partial(self._client.api.kill, step))
        self._cut_build_streams()
        for container in live:
            quietly(container.kill)
            quietly(functools.partial(container.remove, force=True))
        self._kill_build_steps(wait)


def _docker_client(timeout: float) -> DockerClient:
    """A docker-py client of the engine at DOCKER_HOST (or the default socket), pinged."""
    import docker  # type: ignore[import-untyped, unused-ignore]

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (the default socket)"
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, *connection_errors()) as e:
        raise _unreachable(where, reason(e)) from e
    return client  # type: ignore[no-any-return]


def _unreachable(where: str, why: str) -> DockerUnavailableError:
    hint = ("add your user to the docker group, or " if "denied" in why else "") + START_HINT
    return DockerUnavailableError(f"cannot reach the Docker engine at {redact_text(where)}: {why}", hint=hint)


def _image_info(attrs: Mapping[str, object]) -> ImageInfo:
    """An image's inspection (the engine's JSON, or docker-py's ``attrs``), typed."""
    config = attrs.get("Config")
    labels = config.get("Labels") if isinstance(config, Mapping) else None
    tags = attrs.get("RepoTags")
    return ImageInfo(id=str(attrs.get("Id")),
                     tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
                     labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {})


def _implements_the_protocol(engine: Engine) -> ContainerEngine:
    return engine  # never called: mypy checks here that Engine is a ContainerEngine
