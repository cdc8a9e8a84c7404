"""What every part of the docker-py engine shares: the client, the cancel state, and how
a lost connection or an API error becomes one of our errors.

The only package that imports docker, and lazily, so loading or planning a manifest never
pays for it. Every talk to the engine goes through ``talking``, which also writes the
debug log line (``orchestrator.commandlog``): what was asked, how it ended, how long.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from orchestrator import commandlog, procs
from orchestrator.engine.errors import Cancelled, DeadlineExceeded, EngineError
from orchestrator.engine.protocol import MANAGED_LABEL, LabelledContainer
from orchestrator.engine.socketapi import ReplyError, SocketAPI
from orchestrator.engine.stream import redact_text
from orchestrator.errors import DockerUnavailableError
from orchestrator.shim import RUN_LABEL, WORKSPACE_LABEL

RECHECK_SECONDS = 10.0  # after a log stream ends early, how long to wait for the exit before reopening it
START_HINT = "start Docker or set DOCKER_HOST to a running engine"
T = TypeVar("T")


class DockerClient(Protocol):
    """The subset of ``docker.DockerClient`` used: ``api.build/tag/push/kill/import_image_from_file``,
    ``containers.create`` (and the container's put_archive/start/wait/logs/get_archive/kill/remove),
    ``images.get``."""

    api: Any
    containers: Any
    images: Any

    def ping(self) -> bool: ...
    def version(self) -> Mapping[str, Any]: ...


class Connection:
    """One docker-py client shared by the parallel build threads, and the run's cancel state.

    The client is given, or made on first use by ``connect`` (importing docker-py then):
    a run that only looks images up over ``light`` (a local socket) never imports it."""

    def __init__(self, client: DockerClient | None, *, workspace: Path | None = None,
                 connect: Callable[[], DockerClient] | None = None, light: SocketAPI | None = None) -> None:
        if client is None and connect is None:
            raise ValueError("give a client or a way to connect one")
        self._docker = client
        self._connect = connect
        self._light = light
        # Every container run() creates carries these, so that a later run can find what a
        # killed one left (cleanup after kill -9; `docker ps --filter label=...`).
        self.container_labels: Mapping[str, str] = {
            MANAGED_LABEL: "true", RUN_LABEL: procs.run_token(),
            **({WORKSPACE_LABEL: str(workspace.resolve())} if workspace is not None else {}),
        }
        self._lock = threading.RLock()  # re-entrant: cancel_all may run in a signal handler on a lock holder
        self._live: dict[str, Any] = {}  # container id -> container, while run() owns it
        self._cancelled = False

    @property
    def _client(self) -> DockerClient:
        client = self._docker
        if client is None:
            with self._lock:
                if self._docker is None and self._connect is not None:
                    self._docker = self._connect()
                    self._connected(self._docker)
                client = self._docker
            assert client is not None  # __init__ had one or a way to make one
        return client

    def _connected(self, client: DockerClient) -> None:
        """Called once with the client, given or made on first use: what a subclass must
        attach to it (e.g. a hook on its HTTP session) is attached here."""

    def _ask(self, what: str, question: Callable[[SocketAPI], T]) -> T | None:
        """``question`` asked over the local socket, None when there is none (ask docker-py).
        The socket gone is DockerUnavailableError; an error status from the engine, EngineError."""
        light = self._light
        if light is None:
            return None
        with commandlog.timed("docker", what):
            try:
                return question(light)
            except OSError as e:
                message = f"lost contact with the Docker engine while {what}: {reason(e)}"
                raise DockerUnavailableError(message, hint=START_HINT) from e
            except ReplyError as e:
                raise EngineError(f"{what} failed: {redact_text(str(e))}") from e

    def _start(self, what: str, deadline: float | None) -> float | None:
        """The time budget left, after refusing to start when cancelled or already late."""
        if self._cancelled:
            raise Cancelled(what)
        budget = None if deadline is None else deadline - time.monotonic()
        if budget is not None and budget <= 0:
            raise DeadlineExceeded(what, 0)
        return budget

    def _exit_code(self, container: Any) -> int | None:
        """The exit code once the log stream ended; None if it ended early and the container still runs."""
        try:
            return int(container.wait(timeout=RECHECK_SECONDS)["StatusCode"])
        except connection_errors() as e:
            if is_read_timeout(e):
                return None
            raise

    @contextlib.contextmanager
    def _talking(self, what: str) -> Iterator[None]:
        """Turn a lost connection to the engine into DockerUnavailableError; one debug line."""
        try:
            with commandlog.timed("docker", what):
                yield
        except connection_errors() as e:
            message = f"lost contact with the Docker engine while {what}: {reason(e)}"
            raise DockerUnavailableError(message, hint=START_HINT) from e


def labelled_of(container: Any) -> LabelledContainer:
    attrs = getattr(container, "attrs", None) or {}
    image = (attrs.get("Config") or {}).get("Image") or getattr(container, "image_ref", "?")
    return LabelledContainer(id=str(container.id), name=str(getattr(container, "name", None) or container.id[:12]),
                             image=str(image), labels=dict(container.labels or {}))


def docker_errors() -> Any:
    import docker.errors  # type: ignore[import-untyped, unused-ignore]

    return docker.errors


def connection_errors() -> tuple[type[BaseException], ...]:
    import requests
    import urllib3

    return (requests.exceptions.ConnectionError, requests.exceptions.Timeout, urllib3.exceptions.HTTPError)


def quietly(action: Callable[[], object]) -> None:
    """Best-effort cleanup: the container may be stopped or gone already; never mask the real error."""
    with contextlib.suppress(Exception):
        action()


def sever(response: Any) -> None:
    """Cut the connection of a streamed response, from any thread: a read blocked on it ends."""
    sock = getattr(getattr(getattr(response, "raw", None), "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def explain(error: Any) -> str:
    """The engine's own words; str(APIError) has the request URL, buildargs and all."""
    explanation = getattr(error, "explanation", None) or type(error).__name__
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return redact_text(str(explanation))


def reason(error: BaseException) -> str:
    """The innermost OS-level cause (``No such file or directory``), else the text trimmed."""
    todo, seen = [error], set()
    while todo:
        e = todo.pop(0)
        if id(e) not in seen:
            seen.add(id(e))
            if isinstance(e, OSError) and e.strerror:
                return e.strerror
            todo += [a for a in e.args if isinstance(a, BaseException)]
            todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    text = str(error)
    if match := re.search(r"\[Errno -?\d+\] ([^\"')\]]+)", text):
        return match.group(1)
    return redact_text(text if len(text) <= 200 else text[:197] + "...")


def is_read_timeout(error: BaseException) -> bool:
    return "timed out" in str(error).lower()
