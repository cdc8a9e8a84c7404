"""The Docker Engine seam: build, run, inspect, import and push through docker-py.

The only module that imports docker, and lazily, so loading or planning a manifest never
pays for it. The client is injected (tests pass a ``FakeDockerClient``); one ``Engine`` is
shared by the parallel build threads. Every ``log`` callback gets one complete, cleaned
line at a time, in the calling thread.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import json
import os
import re
import secrets
import shlex
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from orchestrator import procs, treecopy
from orchestrator.errors import BuildError, DockerUnavailableError, Interrupted, TimedOut, tail
from orchestrator.imageref import registry_of, split_tag
from orchestrator.redact import redact
from orchestrator.shim import RUN_LABEL, WORKSPACE_LABEL

Log = Callable[[str], None]
PushProblem = Literal["auth", "unreachable", "other"]
CONTAINER_LABEL = "orchestrator.container"  # one container's own token (engine.run)
MANAGED_LABEL = "orchestrator.managed"  # `docker ps -a --filter label=...` finds leftovers after a kill -9
_RECHECK_SECONDS = 10.0  # after a log stream ends early, how long to wait for the exit before reopening it
# How long cancel_all keeps killing the RUN step of a build: the engine announces a step
# ("Running in <id>") before its container runs, and ignores a kill sent before it does.
_CANCEL_SECONDS = 20.0
_START_HINT = "start Docker or set DOCKER_HOST to a running engine"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RUNNING_IN = re.compile(r"Running in ([0-9a-f]{12,64})")
_BUILT = re.compile(r"Successfully built ([0-9a-f]{12,64})")
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_AUTH = re.compile(r"unauthorized|authentication required|denied|no basic auth|forbidden", re.I)
_UNREACHABLE = re.compile(
    r"dial tcp|connection refused|no such host|i/o timeout|unreachable|tls: |x509: |HTTP response to HTTPS", re.I
)


class DockerClient(Protocol):
    """The subset of ``docker.DockerClient`` used: ``api.build/tag/push/kill/import_image_from_file``,
    ``containers.create`` (and the container's put_archive/start/wait/logs/get_archive/kill/remove),
    ``images.get``."""

    api: Any
    containers: Any
    images: Any

    def ping(self) -> bool: ...
    def version(self) -> Mapping[str, Any]: ...


class EngineError(BuildError):
    """A Docker operation failed. ``output`` (the step's log) is shown as an indented tail."""

    def __init__(self, message: str, *, hint: str | None = None, output: str = "") -> None:
        super().__init__(message, hint=hint)
        self.output = output

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  last output:\n{tail(self.output)}" if self.output.strip() else text


class ImageMissing(EngineError):
    """An image the step needs is not in the engine."""

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"image {ref!r} is not in the Docker engine",
            hint=f"build the artifact that makes it first, or get it with `docker pull {ref}` or `docker load`",
        )
        self.ref = ref


class ImageBuildFailed(EngineError):
    """``docker build`` reported an error, in the stream or as an API error."""

    def __init__(self, image: str, reason: str, *, output: str = "", hint: str | None = None) -> None:
        super().__init__(f"building image {image} failed: {reason}", hint=hint, output=output)
        self.image, self.reason = image, reason


class ContainerFailed(EngineError):
    """A command in a container exited with a non-zero code."""

    def __init__(self, command: str, image: str, exit_code: int, output: str) -> None:
        super().__init__(f"command `{command}` in image {image} exited with code {exit_code}", output=output)
        self.command, self.image, self.exit_code = command, image, exit_code


class DeadlineExceeded(EngineError, TimedOut):
    """A build or command ran past its deadline and was stopped."""

    def __init__(self, what: str, budget: float, output: str = "") -> None:
        super().__init__(
            f"{what} did not finish before its deadline ({budget:.1f}s after it started) and was stopped",
            hint="raise the step's timeout, or find out why it is slow or stuck",
            output=output,
        )
        self.what, self.budget = what, budget


class PushFailed(EngineError):
    """The registry refused a push (``problem="auth"``), could not be reached, or failed otherwise."""

    def __init__(self, ref: str, reason: str, problem: PushProblem, output: str = "") -> None:
        registry = registry_of(ref)
        hint = {
            "auth": f"{registry} refused the credentials: run `docker login {registry}`",
            "unreachable": f"the registry {registry} could not be reached: check its address and the network",
            "other": None,
        }[problem]
        super().__init__(f"pushing {ref} failed: {reason}", hint=hint, output=output)
        self.ref, self.reason, self.problem = ref, reason, problem


class Cancelled(Interrupted):
    """``Engine.cancel_all`` stopped this step (exit code 130)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} was cancelled")
        self.what = what


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


class Engine:
    """Builds images and runs commands in containers; safe to share between threads."""

    def __init__(self, client: DockerClient, *, workspace: Path | None = None) -> None:
        self._client = client
        # Every container run() creates carries these, so that a later run can find what a
        # killed one left (cleanup after kill -9; `docker ps --filter label=...`).
        self.container_labels: Mapping[str, str] = {
            MANAGED_LABEL: "true", RUN_LABEL: procs.run_token(),
            **({WORKSPACE_LABEL: str(workspace.resolve())} if workspace is not None else {}),
        }
        self._lock = threading.RLock()  # re-entrant: cancel_all may run in a signal handler on a lock holder
        self._live: dict[str, Any] = {}  # container id -> container, while run() owns it
        self._build_steps: set[str] = set()  # containers of RUN steps in builds under way
        # The HTTP responses of builds under way: a build can wait silently with no RUN step
        # to kill (ADD from a server that hangs, a FROM pulled from a registry that hangs), its
        # thread in a read bounded only by the deadline. cancel_all cuts the connection, which
        # ends that read, and the engine abandons the build (and removes its RUN container).
        self._build_streams: set[Any] = set()
        self._starting = threading.local()  # the build this thread is starting: see _note_response
        hooks = getattr(getattr(client, "api", None), "hooks", None)  # requests' hooks; absent in fakes
        if isinstance(hooks, dict) and isinstance(hooks.get("response"), list):
            hooks["response"].append(self._note_response)
        self._cancelled = False

    @classmethod
    def from_env(cls, *, timeout: float = 600, workspace: Path | None = None) -> Engine:
        """Connect to the engine at DOCKER_HOST (or the default socket) and ping it.

        ``workspace`` labels the containers this engine starts (see ``container_labels``)."""
        import docker  # type: ignore[import-untyped, unused-ignore]

        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (the default socket)"
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except (docker.errors.DockerException, *_connection_errors()) as e:
            reason = _reason(e)
            hint = ("add your user to the docker group, or " if "denied" in reason else "") + _START_HINT
            message = f"cannot reach the Docker engine at {_redact(where)}: {reason}"
            raise DockerUnavailableError(message, hint=hint) from e
        return cls(client, workspace=workspace)

    def build_image(
        self,
        *,
        context: Path,
        dockerfile: str,
        tags: Sequence[str],
        buildargs: Mapping[str, str],
        target: str | None,
        labels: Mapping[str, str],
        network_mode: str,
        log: Log,
        deadline: float | None = None,
    ) -> BuiltImage:
        """Build ``dockerfile`` (relative to ``context``) with the classic builder; tag it with every tag.

        ``deadline`` is a ``time.monotonic()`` value; past it the build is abandoned.
        """
        errors = _docker_errors()
        name = tags[0] if tags else str(context / dockerfile)
        what = f"building image {name}"
        budget = self._start(what, deadline)
        out = _Output(log)
        image_id = short_id = step = None
        responses: list[Any] = []  # this build's HTTP response, once the engine answers
        try:
            with self._talking(what):
                # `timeout` is docker-py's socket read timeout: without it a silent RUN step
                # could outlive the deadline, as chunks are our only clock.
                self._starting.responses = responses
                try:
                    stream = self._client.api.build(
                        path=str(context), dockerfile=dockerfile, tag=tags[0] if tags else None,
                        buildargs=dict(buildargs), target=target, labels=dict(labels), network_mode=network_mode,
                        rm=True, forcerm=True, decode=True, timeout=budget,
                    )  # fmt: skip
                finally:
                    self._starting.responses = None
                # Closing the stream drops the connection, and the engine abandons the build.
                with contextlib.closing(stream):
                    for chunk in stream:
                        if self._cancelled:
                            raise Cancelled(what)
                        if error := _chunk_error(chunk):
                            out.feed(f"ERROR: {error}\n")
                            raise ImageBuildFailed(name, _redact(error), output=out.text)
                        text = chunk.get("stream") or chunk.get("status")
                        if isinstance(text, str):
                            # Known to cancel_all *before* anyone sees the line: a caller that
                            # cancels on "Running in" must find the step to kill.
                            if match := _RUNNING_IN.search(text):  # so that cancel_all can kill a silent RUN step
                                with self._lock:
                                    self._build_steps.discard(step or "")
                                    self._build_steps.add(step := match.group(1))
                                    late = self._cancelled
                                if late:  # cancel_all ran between our check above and now
                                    _quietly(functools.partial(self._client.api.kill, step))
                                    raise Cancelled(what)
                            out.feed(text)
                            if match := _BUILT.search(text):
                                short_id = match.group(1)
                        if isinstance(aux := chunk.get("aux"), Mapping) and isinstance(aux.get("ID"), str):
                            image_id = aux["ID"]
                        if deadline is not None and time.monotonic() >= deadline:
                            raise DeadlineExceeded(what, budget or 0, out.text)
                if self._cancelled:  # cancel_all cut the stream: it ended without the image
                    raise Cancelled(what)
                out.flush()
                if image_id is None and short_id is not None:
                    image_id = self._client.images.get(short_id).id
        except errors.APIError as e:
            path = context / dockerfile
            hint = None if path.is_file() else f"{path} does not exist; `dockerfile` is relative to `context`"
            raise ImageBuildFailed(name, _explain(e), output=out.text, hint=hint) from e
        except errors.DockerException as e:  # raised before any request, e.g. an invalid tag
            raise ImageBuildFailed(name, _redact(str(e)), output=out.text) from e
        except DockerUnavailableError as e:
            if self._cancelled:  # cancel_all cut the stream
                raise Cancelled(what) from e
            if budget is not None and _is_read_timeout(e.__cause__ or e):
                raise DeadlineExceeded(what, budget, out.text) from e
            raise
        finally:
            with self._lock:
                self._build_steps.discard(step or "")
                self._build_streams.difference_update(responses)
        if image_id is None:
            raise ImageBuildFailed(name, "the engine reported no image id", output=out.text)
        for ref in tags[1:]:
            with self._talking(f"tagging {name} as {ref}"):
                try:
                    self._client.api.tag(image_id, *split_tag(ref))
                except errors.APIError as e:
                    raise EngineError(f"tagging image {name} as {ref} failed: {_explain(e)}") from e
        return BuiltImage(id=image_id, tags=tuple(tags))

    def run(
        self,
        *,
        image: str,
        command: Sequence[str] | str,
        workdir: Path,
        env: Mapping[str, str],
        network_mode: str,
        log: Log,
        deadline: float | None = None,
    ) -> None:
        """Run ``command`` in a new container of ``image`` on a copy of ``workdir`` at /src
        (``orchestrator.treecopy``: /src comes back only when it succeeds; never the .git).

        A string runs under ``sh -c``, a list is the argv. It runs as the caller's uid:gid with
        exactly ``env``. The container is always removed; on Ctrl-C, cancel_all or a passed
        deadline it is killed first."""
        errors = _docker_errors()
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        shown = command if isinstance(command, str) else shlex.join(argv)
        what = f"command `{shown}` in image {image}"
        budget = self._start(what, deadline)
        # Its own label, so that a Ctrl-C landing while the engine creates it (the engine
        # then has a container we hold no handle of) still finds and removes it.
        token = secrets.token_hex(8)
        try:
            with self._talking(f"creating a container for {what}"):
                container = self._client.containers.create(
                    image, argv, environment=dict(env), network_mode=network_mode, working_dir="/src",
                    user=f"{os.getuid()}:{os.getgid()}", labels={**self.container_labels, CONTAINER_LABEL: token},
                    use_config_proxy=False,
                )  # fmt: skip
            with self._lock:
                # cancel_all may have run since _start; a container it never saw must not start.
                cancelled = self._cancelled
                if not cancelled:
                    self._live[container.id] = container
        except errors.ImageNotFound as e:
            raise ImageMissing(image) from e
        except errors.APIError as e:
            raise EngineError(f"creating a container for {what} failed: {_explain(e)}") from e
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop_labelled(CONTAINER_LABEL, token)
            raise
        out = _Output(log)
        expired = threading.Event()

        def expire() -> None:  # on a timer thread: the kill ends both the log stream and the wait
            expired.set()
            _quietly(container.kill)

        timer = threading.Timer(0 if deadline is None else max(0.0, deadline - time.monotonic()), expire)
        try:
            with self._talking(f"running {what}"):
                if cancelled:
                    raise Cancelled(what)
                treecopy.send(container, workdir)
                container.start()
                if deadline is not None:
                    timer.start()
                exit_code = None
                while exit_code is None:  # docker-py ends a follow stream silently on a read timeout
                    position = 0
                    for data in container.logs(stream=True, follow=True):
                        out.feed_at(position, data)
                        position += len(data)
                    exit_code = self._exit_code(container)
                out.feed_at(0, container.logs(stream=False))  # whatever a broken stream missed
                out.flush()
            if self._cancelled and exit_code != 0:
                raise Cancelled(what)
            if expired.is_set() and exit_code != 0:
                raise DeadlineExceeded(what, budget or 0, out.text)
            if exit_code != 0:
                raise ContainerFailed(shown, image, exit_code, out.text)
            copying = f"copying /src back from {what}"

            def check() -> None:  # before each chunk: the copy obeys Ctrl-C and the deadline too
                if self._cancelled:
                    raise Cancelled(copying)
                if deadline is not None and time.monotonic() >= deadline:
                    raise DeadlineExceeded(copying, budget or 0, out.text)

            with self._talking(copying):
                treecopy.bring_back(container, workdir, log=log, check=check)
        except errors.APIError as e:  # start() refused (no such command, network), or cancel_all removed it
            _quietly(container.kill)
            if self._cancelled:
                raise Cancelled(what) from e
            raise EngineError(f"could not run {what}: {_explain(e)}", output=out.text) from e
        except BaseException:
            _quietly(container.kill)  # KeyboardInterrupt lands here while the container still runs
            raise
        finally:
            timer.cancel()
            _quietly(functools.partial(container.remove, force=True))
            with self._lock:
                self._live.pop(container.id, None)

    def image_id(self, ref: str) -> str | None:
        """The full id of image ``ref``, or None when the engine does not have it."""
        errors = _docker_errors()
        with self._talking(f"looking up image {ref}"):
            try:
                return str(self._client.images.get(ref).id)
            except errors.ImageNotFound:
                return None

    def tag(self, image: str, ref: str) -> None:
        """Tag ``image`` (an id or a reference) as ``ref``; a ``ref`` naming another image moves to this one."""
        errors = _docker_errors()
        with self._talking(f"tagging {image} as {ref}"):
            try:
                self._client.api.tag(image, *split_tag(ref))
            except errors.ImageNotFound as e:
                raise ImageMissing(image) from e
            except errors.APIError as e:
                raise EngineError(f"tagging image {image} as {ref} failed: {_explain(e)}") from e

    def image_labels(self, ref: str) -> dict[str, str]:
        """The labels of image ``ref``; ImageMissing when the engine does not have it."""
        errors = _docker_errors()
        with self._talking(f"inspecting image {ref}"):
            try:
                return dict(self._client.images.get(ref).labels or {})
            except errors.ImageNotFound as e:
                raise ImageMissing(ref) from e

    def pushed_digests(self, image: str) -> frozenset[str]:
        """The registry digests the engine records for ``image`` (its RepoDigests, without
        their repository): each is the manifest of this very image as a push or pull saw it.
        ImageMissing when the engine does not have it."""
        errors = _docker_errors()
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
        errors = _docker_errors()
        what = f"importing {tar_path} as {repository}:{tag}"
        if not tar_path.is_file():  # docker-py would take the path for a URL and confuse the message
            raise EngineError(f"{what} failed: {tar_path} is not a file")
        with self._talking(what):
            try:
                reply = self._client.api.import_image_from_file(
                    str(tar_path), repository=repository, tag=tag, changes=list(changes) or None
                )
            except errors.APIError as e:
                raise EngineError(f"{what} failed: {_explain(e)}") from e
            for line in str(reply).splitlines():
                chunk = json.loads(line) if line.strip() else {}
                if error := _chunk_error(chunk):
                    raise EngineError(f"{what} failed: {_redact(error)}")
                if str(chunk.get("status", "")).startswith("sha256:"):
                    return str(chunk["status"])
            return str(self._client.images.get(f"{repository}:{tag}").id)

    def push(self, ref: str, *, log: Log, on_bytes: Callable[[int, int], None] | None = None) -> str:
        """Push image ``ref``; returns the registry's digest (``sha256:...``).

        Credentials come from the Docker config (``docker login``), so no password passes
        through the orchestrator, its logs or its messages. ``on_bytes(sent, total)`` hears
        the bytes uploaded so far over all layers, as the engine reports them.
        """
        errors = _docker_errors()
        out = _Output(log)
        digest = None
        layers: dict[str, tuple[int, int]] = {}  # layer id -> (sent, size)
        with self._talking(f"pushing {ref}"):
            try:
                repository, tag = split_tag(ref)
                for chunk in self._client.api.push(repository, tag=tag, stream=True, decode=True):
                    if error := _chunk_error(chunk):
                        out.feed(f"ERROR: {error}\n")
                        if "does not exist locally" in error:
                            raise ImageMissing(ref)
                        raise PushFailed(ref, _redact(error), _push_problem(error), out.text)
                    if isinstance(aux := chunk.get("aux"), Mapping) and isinstance(aux.get("Digest"), str):
                        digest = aux["Digest"]
                    if isinstance(status := chunk.get("status"), str) and "progress" not in chunk:
                        out.feed(f"{chunk['id']}: {status}\n" if "id" in chunk else f"{status}\n")
                    if on_bytes is not None and _layer_progress(chunk, layers):
                        on_bytes(sum(sent for sent, _ in layers.values()), sum(size for _, size in layers.values()))
            except errors.APIError as e:
                raise PushFailed(ref, _explain(e), "other", out.text) from e
        out.flush()
        if digest is None and (match := _DIGEST.search(out.text)):
            digest = match.group(1)
        if digest is None:
            raise PushFailed(ref, "the registry reported no digest", "other", out.text)
        return str(digest)

    def cancel_all(self, *, wait: float = _CANCEL_SECONDS) -> None:
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
            streams = list(self._build_streams)
        for response in streams:  # a build silent outside a RUN step has nothing else to stop it
            _sever(response)
        for container in live:
            _quietly(container.kill)
            _quietly(functools.partial(container.remove, force=True))
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                steps = list(self._build_steps)
            for step in steps:  # the build then fails with exit code 137, which its thread reports as Cancelled
                _quietly(functools.partial(self._client.api.kill, step))
            if not steps or time.monotonic() >= deadline:
                return
            time.sleep(0.1)

    def _note_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """requests' response hook, in the thread that made the request: keeps the response
        of a build this thread is starting, for cancel_all to cut."""
        responses = getattr(self._starting, "responses", None)
        if responses is None:
            return
        responses.append(response)
        with self._lock:
            self._build_streams.add(response)
            late = self._cancelled
        if late:  # cancel_all ran while the build was being sent
            _sever(response)

    def labelled(self, label: str, value: str | None = None) -> list[LabelledContainer]:
        """Every container (running or not) with ``label`` (set to ``value`` when given)."""
        errors = _docker_errors()
        wanted = label if value is None else f"{label}={value}"
        with self._talking(f"listing containers labelled {wanted}"):
            try:
                found = self._client.containers.list(all=True, filters={"label": wanted})
            except errors.APIError as e:
                raise EngineError(f"listing containers labelled {wanted} failed: {_explain(e)}") from e
        return [_labelled(container) for container in found]

    def remove(self, containers: Sequence[LabelledContainer]) -> list[str]:
        """Kill and remove ``containers``; describes each one that is gone afterwards."""
        errors = _docker_errors()
        gone: list[str] = []
        for found in containers:
            with self._talking(f"removing {found.describe()}"):
                try:
                    # force: the engine kills it first (SIGKILL), whatever its PID 1 ignores.
                    self._client.containers.get(found.id).remove(force=True)
                except errors.NotFound:
                    pass  # removed meanwhile (--rm, or another cleanup)
                except errors.APIError:
                    continue  # still there: not claimed as stopped
            gone.append(found.describe())
        return gone

    def stop_labelled(self, label: str, value: str) -> list[str]:
        """Kill and remove every container with ``label=value``; describes those stopped."""
        return self.remove(self.labelled(label, value))

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
            return int(container.wait(timeout=_RECHECK_SECONDS)["StatusCode"])
        except _connection_errors() as e:
            if _is_read_timeout(e):
                return None
            raise

    @contextlib.contextmanager
    def _talking(self, what: str) -> Iterator[None]:
        """Turn a lost connection to the engine into DockerUnavailableError."""
        try:
            yield
        except _connection_errors() as e:
            message = f"lost contact with the Docker engine while {what}: {_reason(e)}"
            raise DockerUnavailableError(message, hint=_START_HINT) from e


class _Output:
    """Streamed text or bytes -> complete, cleaned lines for ``log``; keeps the last ones for errors."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._partial = ""
        self._lines: deque[str] = deque(maxlen=200)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._offset = 0  # bytes of a container log fed so far, for reopened streams

    def feed(self, text: str) -> None:
        with self._lock:
            self._feed(text)

    def feed_at(self, position: int, data: bytes) -> None:
        """Feed bytes found at ``position`` of a container log, skipping those fed already."""
        with self._lock:
            new = data[max(0, self._offset - position) :]
            if new and position <= self._offset:
                self._offset += len(new)
                self._feed(self._decoder.decode(new))

    def flush(self) -> None:
        with self._lock:
            self._feed(self._decoder.decode(b"", final=True))
            if self._partial:
                self._emit(self._partial)
                self._partial = ""

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join([*self._lines, self._partial] if self._partial else self._lines)

    def _feed(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._emit(line)

    def _emit(self, line: str) -> None:
        line = _redact(_ANSI.sub("", line).rstrip("\r"))
        self._lines.append(line)
        self._log(line)


def _labelled(container: Any) -> LabelledContainer:
    attrs = getattr(container, "attrs", None) or {}
    image = (attrs.get("Config") or {}).get("Image") or getattr(container, "image_ref", "?")
    return LabelledContainer(id=str(container.id), name=str(getattr(container, "name", None) or container.id[:12]),
                             image=str(image), labels=dict(container.labels or {}))


def _docker_errors() -> Any:
    import docker.errors  # type: ignore[import-untyped, unused-ignore]

    return docker.errors


def _connection_errors() -> tuple[type[BaseException], ...]:
    import requests
    import urllib3

    return (requests.exceptions.ConnectionError, requests.exceptions.Timeout, urllib3.exceptions.HTTPError)


def _quietly(action: Callable[[], object]) -> None:
    """Best-effort cleanup: the container may be stopped or gone already; never mask the real error."""
    with contextlib.suppress(Exception):
        action()


def _sever(response: Any) -> None:
    """Cut the connection of a streamed response, from any thread: a read blocked on it ends."""
    sock = getattr(getattr(getattr(response, "raw", None), "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _chunk_error(chunk: Mapping[str, Any]) -> str | None:
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    detail = chunk.get("errorDetail") or {}
    return str(chunk.get("error") or detail.get("message") or json.dumps(dict(chunk)))


def _explain(error: Any) -> str:
    """The engine's own words; str(APIError) has the request URL, buildargs and all."""
    explanation = getattr(error, "explanation", None) or type(error).__name__
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return _redact(str(explanation))


def _reason(error: BaseException) -> str:
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
    return _redact(text if len(text) <= 200 else text[:197] + "...")


def _is_read_timeout(error: BaseException) -> bool:
    return "timed out" in str(error).lower()


def _redact(text: str) -> str:
    return redact(text, mask="***@")


def _layer_progress(chunk: Mapping[str, Any], layers: dict[str, tuple[int, int]]) -> bool:
    """Fold a push chunk's byte counts into ``layers``; True when they changed."""
    detail, layer = chunk.get("progressDetail"), chunk.get("id")
    if not isinstance(layer, str):
        return False
    if chunk.get("status") in ("Pushed", "Layer already exists") and layer in layers:
        layers[layer] = (layers[layer][1], layers[layer][1])
        return True
    if isinstance(detail, Mapping) and isinstance(detail.get("current"), int) and isinstance(detail.get("total"), int):
        layers[layer] = (int(detail["current"]), int(detail["total"]))
        return True
    return False


def _push_problem(reason: str) -> PushProblem:
    return "auth" if _AUTH.search(reason) else "unreachable" if _UNREACHABLE.search(reason) else "other"


