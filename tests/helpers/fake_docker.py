"""A hand-written stand-in for ``docker.DockerClient``: the subset the engine uses.

Faithful to docker-py 7's shapes rather than a MagicMock: explicit signatures (a typo'd
keyword is a TypeError), streams of decoded chunks with the errors *inside* them, real
``docker.errors`` exceptions (``ImageNotFound``, ``NotFound``, ``APIError`` with a status
and an explanation), and requests/urllib3 exceptions for a lost or silent engine.

- ``api.build`` reads the context and the Dockerfile and walks it like the classic
  builder (steps, FROM a known image or scratch, COPY sources, LABEL, target stages).
  ``script_build(tag, ...)`` makes a build fail mid-stream, emit output, or go slowly.
- Each container has its own root directory on the host (a temporary directory, gone
  with ``remove()``): ``put_archive`` extracts into it, ``get_archive`` returns a tar of
  it shaped like the engine's (entries ``src/...`` for ``/src``, plus the path stat), and
  ``start()`` runs the command *on the host* in its working_dir there (or in the host
  side of a bind mount), with the image's PATH and exactly the given environment, so a
  command really writes files; ``script_container(image, ...)`` fakes a result instead,
  and its ``archive`` makes ``get_archive`` return those bytes (an engine that lies).
- ``make_unreachable()`` makes every call fail the way docker-py does without dockerd.

Every call is recorded in ``calls`` as ``(name, kwargs)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker import errors
from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS
from docker.utils import match_tag, parse_repository_tag

from tests.helpers import fake_api

_CREATE_KWARGS = frozenset(RUN_CREATE_KWARGS) | frozenset(RUN_HOST_CONFIG_KWARGS)
_CREATE_KWARGS |= {"ports", "volumes", "network", "networking_config"}
_KNOWN_NETWORKS = {"none", "host", "bridge", "default"}
_INSTRUCTIONS = {
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
}


def _digest(*parts: object) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class BuildScript:
    """How a scripted build of one tag behaves.

    ``error`` appears as an error chunk at step ``fail_at_step`` (default: the last step);
    ``output`` lines are printed by every RUN step, which then runs silently for
    ``run_seconds`` (``api.kill`` of its container ends it with code 137); ``delay``
    seconds pass before each chunk; a ``block`` event holds the stream before its last
    chunk until it is set. With ``starts``, a RUN step's container, once announced
    ("Running in"), starts only when that event is set; until then ``api.kill`` fails
    as the engine's does for a container that is not running, and changes nothing.
    """

    error: str | None = None
    fail_at_step: int | None = None
    output: Sequence[str] = ()
    run_seconds: float = 0.0
    delay: float = 0.0
    block: threading.Event | None = None
    starts: threading.Event | None = None


@dataclass
class ContainerScript:
    """A faked container run: prints ``output``, then exits with ``exit_code`` after
    ``duration`` seconds (or when ``block`` is set), unless killed first (exit 137)."""

    exit_code: int = 0
    output: bytes = b""
    duration: float = 0.0
    block: threading.Event | None = None
    archive: bytes | None = None  # what get_archive returns instead of a tar of the container's files


@dataclass
class FakeImage:
    """Shaped like ``docker.models.images.Image``: ``id``, ``short_id``, ``tags``, ``labels``, ``attrs``."""

    id: str
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    repo_digests: list[str] = field(default_factory=list)  # "repository@digest", as pushes leave them
    layers: list[str] = field(default_factory=list)  # RootFS diff ids, bottom first

    @property
    def short_id(self) -> str:
        return self.id[:17]  # docker-py: "sha256:" and 10 hex digits

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Id": self.id, "RepoTags": list(self.tags), "RepoDigests": list(self.repo_digests),
                "Config": dict(self.config), "RootFS": {"Type": "layers", "Layers": list(self.layers)}}

    @property
    def env(self) -> dict[str, str]:
        pairs = (item.partition("=") for item in self.config.get("Env") or [])
        return {key: value for key, _, value in pairs}


class FakeDockerClient:
    """``docker.DockerClient`` look-alike; see the module docstring."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.reachable = True
        self.networks: set[str] = set()
        self._lock = threading.RLock()
        self._images: dict[str, FakeImage] = {}  # id -> image
        self._tags: dict[str, str] = {}  # "repo:tag" -> id
        self._containers: dict[str, FakeContainer] = {}
        self._build_scripts: dict[str, BuildScript] = {}
        self._container_scripts: list[tuple[str, ContainerScript]] = []
        self._push_outcomes: dict[str, list[dict[str, Any]] | str] = {}
        self._build_steps: dict[str, threading.Event] = {}  # RUN step container -> its kill switch
        self._unstarted_steps: set[str] = set()  # RUN step containers announced but not started
        self.registry: dict[str, str] = {}  # what successful pushes left in the registries: ref -> manifest digest
        self.api = FakeAPIClient(self)
        self.images = FakeImageCollection(self)
        self.containers = FakeContainerCollection(self)

    # -- scripting ------------------------------------------------------------------------

    def add_image(self, ref: str, *, labels: dict[str, str] | None = None, env: dict[str, str] | None = None) -> str:
        """Put an image in the fake engine (as if pulled or loaded); returns its id."""
        config = {
            "Labels": dict(labels or {}),
            "Env": [f"{k}={v}" for k, v in (env or {"PATH": fake_api.DEFAULT_PATH}).items()],
        }
        return self._store(_digest("image", ref, config), [ref], config, layers=[_digest("layer", ref)])

    def script_build(self, tag: str, script: BuildScript) -> None:
        self._build_scripts[tag] = script

    def script_container(self, image: str, script: ContainerScript) -> None:
        """Containers of ``image`` fake their run instead of executing the command."""
        self._container_scripts.append((image, script))

    def script_push(self, ref: str, outcome: str | list[dict[str, Any]]) -> None:
        """``outcome``: "ok", "no-credentials", "unauthorized", "unreachable", or the chunks themselves."""
        self._push_outcomes[ref] = outcome

    def make_unreachable(self) -> None:
        """From now on every call fails as if dockerd were not running."""
        self.reachable = False

    def calls_to(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]

    def from_env(
        self,
        *,
        version: str | None = None,
        timeout: int = 60,
        max_pool_size: int = 10,
        environment: dict[str, str] | None = None,
        use_ssh_client: bool = False,
        use_context: bool = True,
    ) -> FakeDockerClient:
        """Stands in for ``docker.from_env`` (monkeypatch it): fails the same way when unreachable."""
        with self._lock:
            self.calls.append(("from_env", {"version": version, "timeout": timeout}))
        if not self.reachable:
            raise fake_api.version_fetch_failed(fake_api.connection_aborted())
        return self

    # -- DockerClient ---------------------------------------------------------------------

    def ping(self) -> bool:
        self._record("ping")
        return True

    def version(self, api_version: bool = True) -> dict[str, Any]:
        self._record("version", api_version=api_version)
        return dict(fake_api.VERSION)

    # -- internals ------------------------------------------------------------------------

    def _record(self, call: str, /, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((call, kwargs))
        if not self.reachable:
            raise fake_api.connection_aborted()

    def _store(self, image_id: str, tags: Sequence[str], config: dict[str, Any], *,
               layers: Sequence[str] = ()) -> str:
        with self._lock:
            image = self._images.setdefault(image_id, FakeImage(id=image_id, config=config, layers=list(layers)))
            for ref in tags:
                ref = _normalise(ref)
                old = self._tags.get(ref)
                if old and old != image_id and ref in self._images[old].tags:
                    self._images[old].tags.remove(ref)
                self._tags[ref] = image_id
                if ref not in image.tags:
                    image.tags.append(ref)
            return image_id

    def _find_image(self, name: str) -> FakeImage | None:
        with self._lock:
            if "@" in name:
                return next((i for i in self._images.values() if name in i.repo_digests), None)
            if (image_id := self._tags.get(_normalise(name))) is not None:
                return self._images[image_id]
            bare = name.removeprefix("sha256:")
            if re.fullmatch(r"[0-9a-f]{12,64}", bare):
                matches = [i for i in self._images.values() if i.id.removeprefix("sha256:").startswith(bare)]
                if len(matches) == 1:
                    return matches[0]
            return None


def _normalise(ref: str) -> str:
    repository, tag = parse_repository_tag(ref)
    return ref if repository.startswith("sha256") else f"{repository}:{tag or 'latest'}"


class FakeAPIClient:
    """``docker.APIClient`` look-alike (``client.api``)."""

    def __init__(self, client: FakeDockerClient) -> None:
        self._client = client

    def build(
        self,
        path: str | None = None,
        tag: str | None = None,
        quiet: bool = False,
        fileobj: Any = None,
        nocache: bool = False,
        rm: bool = False,
        timeout: float | None = None,
        custom_context: bool = False,
        encoding: str | None = None,
        pull: bool = False,
        forcerm: bool = False,
        dockerfile: str | None = None,
        container_limits: dict[str, Any] | None = None,
        decode: bool = False,
        buildargs: dict[str, str] | None = None,
        gzip: bool = False,
        shmsize: int | None = None,
        labels: dict[str, str] | None = None,
        cache_from: list[str] | None = None,
        target: str | None = None,
        network_mode: str | None = None,
        squash: bool | None = None,
        extra_hosts: dict[str, str] | None = None,
        platform: str | None = None,
        isolation: str | None = None,
        use_config_proxy: bool = True,
    ) -> Iterator[Any]:
        self._client._record(
            "api.build",
            path=path,
            tag=tag,
            dockerfile=dockerfile,
            buildargs=buildargs,
            target=target,
            labels=labels,
            network_mode=network_mode,
            rm=rm,
            forcerm=forcerm,
            decode=decode,
            timeout=timeout,
        )
        # Checked by docker-py before any request, so raised at call time, like these.
        if path is None and fileobj is None:
            raise TypeError("Either path or fileobj needs to be provided.")
        if fileobj is not None or custom_context:
            raise NotImplementedError("the fake builds only from a context directory")
        if not os.path.isdir(path or ""):
            raise TypeError("You must specify a directory to build in path")
        if tag is not None and not match_tag(tag):
            raise errors.DockerException(f"invalid tag '{tag}': invalid reference format")
        builder = _ClassicBuild(
            self._client,
            Path(path or ""),
            dockerfile or "Dockerfile",
            tag,
            dict(buildargs or {}),
            dict(labels or {}),
            target,
            timeout,
        )
        chunks = builder.chunks()
        return chunks if decode else (json.dumps(chunk).encode() + b"\r\n" for chunk in chunks)

    def kill(self, container: str, signal: str | int | None = None) -> None:
        self._client._record("api.kill", container=container, signal=signal)
        self._refuse_unstarted_step(container)
        if (step := self._client._build_steps.get(container)) is not None:
            step.set()
            return
        with self._client._lock:
            found = [c for c in self._client._containers.values() if c.id.startswith(container)]
        if not found:
            raise fake_api.api_error(
                404, f"/containers/{container}/kill", fake_api.NO_SUCH_CONTAINER.format(id=container)
            )
        found[0].kill(signal)

    def _refuse_unstarted_step(self, container: str) -> None:
        """The engine's answer to a kill of a build step's container that has not started yet."""
        if container in self._client._unstarted_steps:
            raise fake_api.api_error(409, f"/containers/{container}/kill", fake_api.CANNOT_KILL.format(id=container))

    def tag(self, image: str, repository: str, tag: str | None = None, force: bool = False) -> bool:
        self._client._record("api.tag", image=image, repository=repository, tag=tag, force=force)
        found = self._client._find_image(image)
        if found is None:
            raise fake_api.api_error(404, f"/images/{image}/tag", fake_api.NO_SUCH_IMAGE.format(ref=image))
        self._client._store(found.id, [f"{repository}:{tag or 'latest'}"], found.config, layers=found.layers)
        return True

    def push(
        self,
        repository: str,
        tag: str | None = None,
        stream: bool = False,
        auth_config: dict[str, str] | None = None,
        decode: bool = False,
    ) -> Any:
        self._client._record(
            "api.push", repository=repository, tag=tag, stream=stream, auth_config=auth_config, decode=decode
        )
        if not tag:
            repository, tag = parse_repository_tag(repository)
        tag = tag or "latest"
        ref = f"{repository}:{tag}"
        image = self._client._find_image(ref)
        outcome = self._client._push_outcomes.get(ref, "ok")
        registry = repository.split("/", 1)[0] if "/" in repository else "docker.io"
        if image is None:
            chunks = [
                fake_api.push_refers(repository),
                fake_api.error_chunk(fake_api.PUSH_NOT_LOCAL.format(repository=repository)),
            ]
        elif isinstance(outcome, list):
            chunks = outcome
        elif outcome == "ok":
            digest = _digest("manifest", image.id, ref)
            chunks = fake_api.push_ok(repository, tag, image.id[7:19], digest)
        else:
            message = {
                "no-credentials": fake_api.PUSH_NO_CREDENTIALS,
                "unauthorized": fake_api.PUSH_UNAUTHORIZED,
                "unreachable": fake_api.PUSH_UNREACHABLE.format(registry=registry),
            }[outcome]
            chunks = [fake_api.push_refers(repository), fake_api.error_chunk(message)]
        if image is not None and not any("error" in chunk or "errorDetail" in chunk for chunk in chunks):
            for chunk in chunks:  # the engine records the digest of what it pushed on that image
                if isinstance(aux := chunk.get("aux"), dict) and isinstance(aux.get("Digest"), str):
                    image.repo_digests.append(f"{repository}@{aux['Digest']}")
                    self._client.registry[ref] = aux["Digest"]  # and the registry now holds it
        if not stream:
            return "".join(json.dumps(chunk) + "\r\n" for chunk in chunks)
        return iter(chunks) if decode else (json.dumps(chunk).encode() + b"\r\n" for chunk in chunks)

    def pull(self, repository: str, tag: str | None = None, stream: bool = False, decode: bool = False,
             auth_config: dict[str, str] | None = None) -> Any:
        """A pull finds what this fake engine pushed (its RepoDigests), as a registry would give it back."""
        self._client._record("api.pull", repository=repository, tag=tag, stream=stream, decode=decode)
        ref = f"{repository}@{tag}" if tag and tag.startswith("sha256:") else f"{repository}:{tag or 'latest'}"
        with self._client._lock:
            found = next((i for i in self._client._images.values() if ref in i.repo_digests), None)
        if found is None:
            chunks = [fake_api.error_chunk(fake_api.PULL_UNKNOWN.format(ref=ref))]
        else:
            chunks = [{"status": f"Pulling from {repository}", "id": tag}, {"status": f"Digest: {tag}"},
                      {"status": f"Status: Image is up to date for {ref}"}]
        return iter(chunks) if decode else (json.dumps(chunk).encode() + b"\r\n" for chunk in chunks)

    def import_image_from_file(
        self, filename: str, repository: str | None = None, tag: str | None = None, changes: list[str] | None = None
    ) -> str:
        self._client._record(
            "api.import_image_from_file", filename=filename, repository=repository, tag=tag, changes=changes
        )
        try:
            data = Path(filename).read_bytes()
        except OSError:  # docker-py then sends the path as a URL
            raise fake_api.api_error(500, "/images/create", fake_api.IMPORT_NOT_A_FILE.format(src=filename)) from None
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                archive.getmembers()
        except tarfile.TarError as e:
            raise fake_api.api_error(500, "/images/create", f"archive/tar: {e}") from None
        config: dict[str, Any] = {"Labels": {}, "Env": []}
        for change in changes or []:
            keyword, _, rest = change.partition(" ")
            if keyword.upper() == "ENV":
                config["Env"].append(rest.replace(" ", "=", 1) if "=" not in rest else rest)
            elif keyword.upper() == "LABEL":
                key, _, value = rest.partition("=")
                config["Labels"][key] = value
        image_id = _digest("import", hashlib.sha256(data).hexdigest(), changes)
        self._client._store(image_id, [f"{repository}:{tag or 'latest'}"] if repository else [], config,
                            layers=[_digest("import-layer", hashlib.sha256(data).hexdigest())])
        return fake_api.import_reply(image_id)


class FakeImageCollection:
    """``client.images``."""

    def __init__(self, client: FakeDockerClient) -> None:
        self._client = client

    def get(self, name: str) -> FakeImage:
        self._client._record("images.get", name=name)
        image = self._client._find_image(name)
        if image is None:
            raise fake_api.api_error(404, f"/images/{name}/json", fake_api.NO_SUCH_IMAGE_INSPECT.format(ref=name))
        return image

    def list(self) -> list[FakeImage]:
        self._client._record("images.list")
        return list(self._client._images.values())

    def remove(self, image: str, force: bool = False, noprune: bool = False) -> None:
        """``docker rmi``: a tag is untagged (the image goes with its last tag); an id removes the image."""
        self._client._record("images.remove", image=image, force=force, noprune=noprune)
        client = self._client
        with client._lock:
            found = client._find_image(image)
            if found is None:
                raise fake_api.api_error(404, f"/images/{image}", fake_api.NO_SUCH_IMAGE.format(ref=image))
            by_tag = _normalise(image) in found.tags
            if not by_tag and len(found.tags) > 1 and not force:
                raise fake_api.api_error(409, f"/images/{image}", fake_api.IMAGE_IN_USE.format(ref=image))
            for ref in [_normalise(image)] if by_tag else list(found.tags):
                found.tags.remove(ref)
                client._tags.pop(ref, None)
            if not found.tags:
                client._images.pop(found.id, None)


class FakeContainerCollection:
    """``client.containers``."""

    def __init__(self, client: FakeDockerClient) -> None:
        self._client = client

    def create(self, image: str, command: str | list[str] | None = None, **kwargs: Any) -> FakeContainer:
        self._client._record("containers.create", image=image, command=command, **kwargs)
        unexpected = set(kwargs) - _CREATE_KWARGS
        if unexpected:  # docker.errors.create_unexpected_kwargs_error
            raise TypeError(f"run() got an unexpected keyword argument '{sorted(unexpected)[0]}'")
        found = self._client._find_image(image)
        if found is None:
            raise fake_api.api_error(404, "/containers/create", fake_api.NO_SUCH_IMAGE.format(ref=image))
        script = next((s for ref, s in self._client._container_scripts if _normalise(ref) in found.tags), None)
        container = FakeContainer(self._client, found, image, command, kwargs, script)
        with self._client._lock:
            self._client._containers[container.id] = container
        return container

    def get(self, container_id: str) -> FakeContainer:
        self._client._record("containers.get", container_id=container_id)
        with self._client._lock:
            container = self._client._containers.get(container_id)
        if container is None:
            raise fake_api.api_error(
                404, f"/containers/{container_id}/json", fake_api.NO_SUCH_CONTAINER.format(id=container_id)
            )
        return container

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[FakeContainer]:  # noqa: A002
        self._client._record("containers.list", all=all, filters=filters)
        with self._client._lock:
            found = list(self._client._containers.values())
        if not all:
            found = [c for c in found if c.status == "running"]
        label = (filters or {}).get("label")
        if label:
            key, _, value = label.partition("=")
            found = [c for c in found if key in c.labels and (not value or c.labels[key] == value)]
        return found


class FakeContainer:
    """``docker.models.containers.Container``: put_archive/start/wait/logs/get_archive/kill/remove
    over a host process and a directory that stands for its file system."""

    def __init__(
        self,
        client: FakeDockerClient,
        image: FakeImage,
        ref: str,
        command: Any,
        kwargs: dict[str, Any],
        script: ContainerScript | None,
    ) -> None:
        self._client, self.image, self.image_ref, self.kwargs, self._script = client, image, ref, kwargs, script
        self.command: list[str] = shlex.split(command) if isinstance(command, str) else list(command or [])
        self.id = _digest("container", ref, self.command, time.monotonic_ns()).removeprefix("sha256:")
        self.labels: dict[str, str] = dict(kwargs.get("labels") or {})
        self.status = "created"
        self.exit_code: int | None = None
        self.killed = False
        self.removed = False
        self._output = bytearray()
        self._changed = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        # The container's file system; like the engine, create() makes the working_dir.
        self.root = Path(tempfile.mkdtemp(prefix="fake-container-"))
        self.root.chmod(0o755)
        weakref.finalize(self, shutil.rmtree, self.root, True)  # a test that never removes it
        (self.root / (kwargs.get("working_dir") or "/").lstrip("/")).mkdir(parents=True, exist_ok=True)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        """docker-py's ``Container.name``; the engine makes one up when none is given."""
        return f"fake_{self.id[:8]}"

    @property
    def host_workdir(self) -> Path:
        """Where the container's working_dir is on the host: a bind mount's host side, else in ``root``."""
        workdir = self.kwargs.get("working_dir") or "/"
        for host, bind in (self.kwargs.get("volumes") or {}).items():
            inside = bind["bind"] if isinstance(bind, dict) else str(bind)
            if workdir == inside or workdir.startswith(inside.rstrip("/") + "/"):
                return Path(host) / os.path.relpath(workdir, inside)
        return self.root / workdir.lstrip("/")

    def put_archive(self, path: str, data: bytes | Any) -> bool:
        """Extract the tar ``data`` at ``path``, which must be a directory; owners as in the tar (as root)."""
        self._call("put_archive", path=path)
        target = self.root / path.lstrip("/")
        if not target.is_dir():
            raise fake_api.api_error(404, f"/containers/{self.id}/archive", fake_api.NO_SUCH_PATH.format(
                path=path, id=self.id))
        raw = data if isinstance(data, bytes) else data.read()
        with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
            for member in archive.getmembers():
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise fake_api.api_error(500, f"/containers/{self.id}/archive", "invalid tar entry")
            archive.extractall(target, numeric_owner=True, filter="fully_trusted")
        return True

    def get_archive(
        self, path: str, chunk_size: int | None = fake_api.ARCHIVE_CHUNK_SIZE, encode_stream: bool = False
    ) -> tuple[Iterator[bytes], dict[str, Any]]:
        """A tar of ``path`` named by its last component (``src/...``), symlinks kept, and its stat."""
        self._call("get_archive", path=path)
        target = self.root / path.lstrip("/")
        if not os.path.lexists(target):
            raise fake_api.api_error(404, f"/containers/{self.id}/archive", fake_api.NO_SUCH_PATH.format(
                path=path, id=self.id))
        info = target.lstat()
        stat_reply = fake_api.path_stat(target.name, info, os.readlink(target) if target.is_symlink() else "")
        if self._script is not None and self._script.archive is not None:
            data = self._script.archive
        else:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
                archive.add(target, arcname=target.name)
            data = buffer.getvalue()
        size = chunk_size or len(data) or 1
        return (data[i : i + size] for i in range(0, len(data), size)), stat_reply

    @property
    def environment(self) -> dict[str, str]:
        """What the process sees: the image's Env (PATH), HOSTNAME and HOME, then ``environment``."""
        env = {"PATH": fake_api.DEFAULT_PATH, "HOSTNAME": self.short_id, "HOME": "/"} | self.image.env
        given = self.kwargs.get("environment") or {}
        pairs = given.items() if isinstance(given, dict) else (item.partition("=")[::2] for item in given)
        return env | {key: str(value) for key, value in pairs}

    def start(self) -> None:
        self._call("start")
        network = self.kwargs.get("network_mode") or "default"
        if network not in _KNOWN_NETWORKS | self._client.networks:
            raise fake_api.api_error(
                404, f"/containers/{self.id}/start", fake_api.NETWORK_NOT_FOUND.format(name=network)
            )
        if self._script is not None:
            self.status = "running"
            threading.Thread(target=self._play_script, daemon=True).start()
            return
        env = self.environment
        executable = shutil.which(self.command[0], path=env["PATH"]) if self.command else None
        if executable is None:
            raise fake_api.api_error(
                400, f"/containers/{self.id}/start", fake_api.EXEC_NOT_FOUND.format(command=(self.command or [""])[0])
            )
        self._process = subprocess.Popen(
            [executable, *self.command[1:]],
            cwd=self.host_workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=self._user()[0],
            group=self._user()[1],
        )
        self.status = "running"
        threading.Thread(target=self._read_process, daemon=True).start()

    def wait(self, timeout: float | None = None, condition: str | None = None) -> dict[str, Any]:
        self._call("wait", timeout=timeout, condition=condition)
        end = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self.status == "running":
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise fake_api.wait_timeout(f"/containers/{self.id}/wait")
                self._changed.wait(remaining if remaining is not None else 0.5)
                if self.removed:
                    raise self._no_such_container("wait")
        return fake_api.wait_reply(self.exit_code or 0)

    def logs(
        self,
        stdout: bool = True,
        stderr: bool = True,
        stream: bool = False,
        timestamps: bool = False,
        tail: str | int = "all",
        since: Any = None,
        follow: bool | None = None,
        until: Any = None,
    ) -> Any:
        self._call("logs", stream=stream, follow=follow)
        if not stream:
            with self._changed:
                return bytes(self._output)
        return _LogStream(self, follow=stream if follow is None else follow)

    def kill(self, signal: str | int | None = None) -> None:
        self._call("kill", signal=signal)
        with self._changed:
            if self.status != "running":
                raise fake_api.api_error(409, f"/containers/{self.id}/kill", fake_api.CANNOT_KILL.format(id=self.id))
            self.killed = True
            self._changed.notify_all()
        if self._process is not None:
            _kill_group(self._process)

    def remove(self, v: bool = False, link: bool = False, force: bool = False) -> None:
        self._call("remove", v=v, link=link, force=force)
        if self.status == "running":
            if not force:
                raise fake_api.api_error(409, f"/containers/{self.id}", fake_api.REMOVE_RUNNING.format(id=self.id))
            with contextlib.suppress(errors.APIError):  # it may have exited meanwhile
                self.kill()
            self.wait()
        with self._changed:
            self.removed = True
            self._changed.notify_all()
        with self._client._lock:
            self._client._containers.pop(self.id, None)
        shutil.rmtree(self.root, ignore_errors=True)

    def reload(self) -> None:
        self._call("reload")

    # -- internals ------------------------------------------------------------------------

    def _call(self, name: str, **kwargs: Any) -> None:
        self._client._record(f"container.{name}", id=self.id, **kwargs)
        if self.removed:
            raise self._no_such_container(name)

    def _no_such_container(self, action: str) -> errors.NotFound:
        message = fake_api.NO_SUCH_CONTAINER.format(id=self.id)
        if action == "kill":
            message = f"Cannot kill container: {self.id}: {message}"
        return fake_api.api_error(404, f"/containers/{self.id}/{action}", message)

    def _user(self) -> tuple[int | None, int | None]:
        """Run as the requested uid:gid when we can (as root), like the engine would."""
        user = str(self.kwargs.get("user") or "")
        if os.getuid() != 0 or not re.fullmatch(r"\d+(:\d+)?", user):
            return None, None
        uid, _, gid = user.partition(":")
        return int(uid), int(gid or uid)

    def _append(self, data: bytes) -> None:
        with self._changed:
            self._output += data
            self._changed.notify_all()

    def _exit(self, code: int) -> None:
        with self._changed:
            self.exit_code, self.status = code, "exited"
            self._changed.notify_all()

    def _read_process(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout.fileno()
        for data in iter(lambda: os.read(stdout, 4096), b""):
            self._append(data)
        self._process.stdout.close()
        code = self._process.wait()
        self._exit(128 - code if code < 0 else code)  # killed by a signal: 128+N, like the engine

    def _play_script(self) -> None:
        script = self._script
        assert script is not None
        self._append(script.output)
        end = time.monotonic() + script.duration
        with self._changed:
            while not self.killed and (time.monotonic() < end or (script.block and not script.block.is_set())):
                self._changed.wait(0.02)
        self._exit(137 if self.killed else script.exit_code)


class _LogStream:
    """``docker.types.daemon.CancellableStream`` over a container's output: iterate, or close()."""

    def __init__(self, container: FakeContainer, *, follow: bool) -> None:
        self._container, self._follow = container, follow
        self._position = 0
        self.closed = False

    def __iter__(self) -> _LogStream:
        return self

    def __next__(self) -> bytes:
        container = self._container
        with container._changed:
            while True:
                if self.closed or (self._container.removed and self._position >= len(container._output)):
                    raise StopIteration
                if self._position < len(container._output):
                    data = bytes(container._output[self._position :])
                    self._position += len(data)
                    return data
                if not self._follow or container.status != "running":
                    raise StopIteration
                container._changed.wait(0.5)

    def close(self) -> None:
        with self._container._changed:
            self.closed = True
            self._container._changed.notify_all()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class _ClassicBuild:
    """Walks a Dockerfile the way the classic builder reports it, chunk by chunk."""

    def __init__(
        self,
        client: FakeDockerClient,
        context: Path,
        dockerfile: str,
        tag: str | None,
        buildargs: dict[str, str],
        labels: dict[str, str],
        target: str | None,
        timeout: float | None,
    ) -> None:
        self.client, self.context, self.dockerfile, self.tag = client, context, dockerfile, tag
        self.buildargs, self.labels, self.target, self.timeout = buildargs, labels, target, timeout
        self.script = client._build_scripts.get(tag or "", BuildScript())
        # docker-py's APIError text carries the request URL, buildargs and all.
        query = {"t": tag or "", "dockerfile": dockerfile, "buildargs": json.dumps(buildargs)}
        self.url_path = "/build?" + urllib.parse.urlencode(query)

    def chunks(self) -> Iterator[dict[str, Any]]:
        try:
            for chunk in self._walk():
                self._pause(self.script.delay)
                yield chunk
        finally:  # the engine sees a closed stream as a dropped connection
            with self.client._lock:
                self.client.calls.append(("api.build.closed", {"tag": self.tag}))

    def _pause(self, seconds: float) -> None:
        # docker-py's timeout is a socket read timeout: silence longer than it breaks the stream.
        if self.timeout is not None and seconds > self.timeout:
            time.sleep(self.timeout)
            raise fake_api.read_timeout(self.url_path)
        if seconds:
            time.sleep(seconds)

    def _run_silently(self, container: str) -> bool:
        """A RUN step's silent work; True when api.kill ended it."""
        if not self.script.run_seconds:
            return False
        self._start_late(container)
        killed = self.client._build_steps[container] = threading.Event()
        try:
            limit = self.script.run_seconds if self.timeout is None else min(self.script.run_seconds, self.timeout)
            if killed.wait(limit):
                return True
            if limit < self.script.run_seconds:  # silence past docker-py's read timeout
                raise fake_api.read_timeout(self.url_path)
            return False
        finally:
            self.client._build_steps.pop(container, None)

    def _start_late(self, container: str) -> None:
        """With ``BuildScript.starts``: the announced container starts only when it is set."""
        if self.script.starts is None:
            return
        self.client._unstarted_steps.add(container)
        try:
            self.script.starts.wait()
        finally:
            self.client._unstarted_steps.discard(container)

    def _instructions(self) -> list[tuple[int, str, str]]:
        path = self.context / self.dockerfile
        if not path.is_file():
            raise fake_api.api_error(500, self.url_path, fake_api.MISSING_DOCKERFILE.format(dockerfile=self.dockerfile))
        found, pending, start = [], "", 0
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            start = start or number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text = (pending + line).strip()
            pending = ""
            word, _, rest = text.partition(" ")
            if word.upper() not in _INSTRUCTIONS:
                raise fake_api.api_error(400, self.url_path, fake_api.PARSE_ERROR.format(line=start, word=word))
            found.append((start, word.upper(), rest.strip()))
            start = 0
        if not found:
            raise fake_api.api_error(500, self.url_path, fake_api.EMPTY_DOCKERFILE.format(dockerfile=self.dockerfile))
        if found[0][1] not in {"FROM", "ARG"}:
            raise fake_api.api_error(500, self.url_path, fake_api.NO_BUILD_STAGE)
        return found

    def _walk(self) -> Iterator[dict[str, Any]]:
        instructions = self._instructions()
        if self.target:
            ends = [
                i
                for i, (_, word, rest) in enumerate(instructions)
                if word == "FROM" and rest.lower().endswith(f" as {self.target.lower()}")
            ]
            if not ends:
                raise fake_api.api_error(500, self.url_path, fake_api.MISSING_TARGET.format(target=self.target))
            following = [i for i, (_, word, _) in enumerate(instructions) if word == "FROM" and i > ends[0]]
            instructions = instructions[: following[0]] if following else instructions
        steps = [f"{word} {rest}" for _, word, rest in instructions]
        # The engine adds one LABEL step per build label, in key order, value unquoted.
        steps += [f"LABEL {key}={value}" for key, value in sorted(self.labels.items())]
        total = len(steps)
        fail_at = self.script.fail_at_step or total
        stages: dict[str, FakeImage] = {}
        current: FakeImage | None = None
        config: dict[str, Any] = {}
        layers: list[str] = []  # diff ids: COPY, ADD and RUN steps add one, as the classic builder does
        used_args: set[str] = set()
        for number, text in enumerate(steps, 1):
            word, _, rest = text.partition(" ")
            yield from fake_api.step(number, total, text)
            if word == "FROM":
                source, _, name = rest.partition(" ")
                current = stages.get(source) or self.client._find_image(source)
                if source != "scratch" and current is None:
                    yield fake_api.error_chunk(fake_api.PULL_OFFLINE)
                    return
                config = json.loads(json.dumps(current.config)) if current else {"Labels": {}, "Env": []}
                layers = list(current.layers) if current else []
                yield fake_api.layer(current.id[7:19] if current else "")
            else:
                if word in {"COPY", "ADD"}:
                    sources = [s for s in shlex.split(rest)[:-1] if not s.startswith("--")]
                    if "--from=" not in rest:
                        for source in sources:
                            if not (self.context / source).exists():
                                yield fake_api.error_chunk(fake_api.COPY_MISSING.format(source=source))
                                return
                    layers = [*layers, _digest("copy-layer", rest, self._sources_digest(sources))]
                else:
                    container = _digest("build-container", text, number)[7:19]
                    yield fake_api.running_in(container)
                    if word == "RUN":
                        layers = [*layers, _digest("run-layer", rest, self._context_digest())]
                        for line in self.script.output:
                            yield {"stream": line + "\n"}
                        if self._run_silently(container):
                            yield fake_api.removing(container)
                            yield fake_api.error_chunk(fake_api.run_failed(rest, 137), code=137)
                            return
                    yield fake_api.removing(container)
                if word == "LABEL" and number > len(instructions):
                    key, _, value = rest.partition("=")
                    config.setdefault("Labels", {})[key] = value
                elif word == "LABEL":
                    for token in shlex.split(rest):
                        key, _, value = token.partition("=")
                        config.setdefault("Labels", {})[key] = value
                elif word == "ENV":
                    config.setdefault("Env", []).append(rest.replace(" ", "=", 1) if "=" not in rest else rest)
                elif word == "ARG":
                    used_args.add(rest.partition("=")[0])
            if self.script.error is not None and number == fail_at:
                if self.script.block is not None:
                    self.script.block.wait()
                yield fake_api.error_chunk(self.script.error, code=1)
                return
            if word != "FROM":
                current = FakeImage(
                    id=_digest(current.id if current else "scratch", text, self._context_digest()), config=config,
                    layers=layers,
                )
                yield fake_api.layer(current.id[7:19])
            if word == "FROM" and " as " in rest.lower():
                stages[rest.split()[-1]] = current or FakeImage(id="scratch", config=config, layers=layers)
        if current is None:
            yield fake_api.error_chunk(fake_api.NO_IMAGE_GENERATED)
            return
        if self.script.block is not None:
            self.script.block.wait()
        image_id = self.client._store(current.id, [self.tag] if self.tag else [], config, layers=current.layers)
        yield fake_api.built(image_id)[0]
        unused = sorted(set(self.buildargs) - used_args)
        if unused:
            yield fake_api.unused_buildargs(unused)
        yield fake_api.built(image_id)[1]
        if self.tag:
            yield fake_api.tagged(self.tag)

    def _sources_digest(self, sources: Sequence[str]) -> str:
        """What a COPY of ``sources`` puts in its layer: names and bytes, never times."""
        found = []
        for source in sources:
            path = self.context / source
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            found += [(str(p.relative_to(self.context)), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]
        return _digest(found)

    def _context_digest(self) -> str:
        files = sorted(p for p in self.context.rglob("*") if p.is_file())
        return _digest([(str(p.relative_to(self.context)), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files])
