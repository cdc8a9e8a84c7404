"""Commands in builder containers: the checkout goes in and the result comes back through
the API (``orchestrator.treecopy``), so the engine need not be on this machine."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator import commandlog, treecopy
from orchestrator.engine.connection import Connection, docker_errors, explain, labelled_of, quietly
from orchestrator.engine.errors import Cancelled, ContainerFailed, DeadlineExceeded, EngineError, ImageMissing
from orchestrator.engine.protocol import CONTAINER_LABEL, LabelledContainer, Log
from orchestrator.engine.stream import Output


class ContainerRuns(Connection):
    """``run``, and finding and removing containers by label (what a killed run left)."""

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
        errors = docker_errors()
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        shown = command if isinstance(command, str) else shlex.join(argv)
        what = f"command `{shown}` in image {image}"
        budget = self._start(what, deadline)
        # Its own label, so that a container we hold no handle of is still found and removed.
        token = secrets.token_hex(8)
        try:
            with self._talking(f"creating a container for {what}"):
                container = _uninterrupted(functools.partial(
                    self._client.containers.create,
                    image, argv, environment=dict(env), network_mode=network_mode, working_dir="/src",
                    user=f"{os.getuid()}:{os.getgid()}", labels={**self.container_labels, CONTAINER_LABEL: token},
                    use_config_proxy=False,
                ))  # fmt: skip
            with self._lock:
                # cancel_all may have run since _start; a container it never saw must not start.
                cancelled = self._cancelled
                if not cancelled:
                    self._live[container.id] = container
        except errors.ImageNotFound as e:
            raise ImageMissing(image) from e
        except errors.APIError as e:
            raise EngineError(f"creating a container for {what} failed: {explain(e)}") from e
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop_labelled(CONTAINER_LABEL, token)
            raise
        out = Output(log)
        expired = threading.Event()

        def expire() -> None:  # on a timer thread: the kill ends both the log stream and the wait
            expired.set()
            quietly(container.kill)

        timer = threading.Timer(0 if deadline is None else max(0.0, deadline - time.monotonic()), expire)
        try:
            with self._talking(f"running {what}"):
                if cancelled:
                    raise Cancelled(what)
                treecopy.send(container, workdir)
                started = time.monotonic()
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
                commandlog.ran("docker", f"container {shown} ({image})", exit_code, time.monotonic() - started)
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
            quietly(container.kill)
            if self._cancelled:
                raise Cancelled(what) from e
            raise EngineError(f"could not run {what}: {explain(e)}", output=out.text) from e
        except BaseException:
            quietly(container.kill)  # KeyboardInterrupt lands here while the container still runs
            raise
        finally:
            timer.cancel()
            try:
                container.remove(force=True)
            except Exception:  # gone already, or the handle failed us: find it by its label
                with contextlib.suppress(Exception):
                    self.stop_labelled(CONTAINER_LABEL, token)
            with self._lock:
                self._live.pop(container.id, None)

    def labelled(self, label: str, value: str | None = None) -> list[LabelledContainer]:
        """Every container (running or not) with ``label`` (set to ``value`` when given)."""
        errors = docker_errors()
        wanted = label if value is None else f"{label}={value}"
        with self._talking(f"listing containers labelled {wanted}"):
            try:
                found = self._client.containers.list(all=True, filters={"label": wanted})
            except errors.APIError as e:
                raise EngineError(f"listing containers labelled {wanted} failed: {explain(e)}") from e
        return [labelled_of(container) for container in found]

    def remove(self, containers: Sequence[LabelledContainer]) -> list[str]:
        """Kill and remove ``containers``; describes each one that is gone afterwards."""
        errors = docker_errors()
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


_CREATE_PATIENCE = 30.0  # seconds an interrupted run waits for the engine's answer to its create


def _uninterrupted(create: Callable[[], Any]) -> Any:
    """``create()`` in a thread of its own, so that a Ctrl-C cannot cut the engine's answer
    off: the engine makes the container whether or not we read the answer, and a container
    whose id we never learnt would run on. On an interrupt, wait (bounded) for the answer,
    remove what it made, then let the interrupt go on."""
    outcome: list[Any] = []
    failure: list[BaseException] = []

    def call() -> None:
        try:
            outcome.append(create())
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            failure.append(e)

    worker = threading.Thread(target=call, name="container-create", daemon=True)
    worker.start()
    try:
        worker.join()
    except BaseException:
        worker.join(_CREATE_PATIENCE)
        for container in outcome:
            quietly(functools.partial(container.remove, force=True))
        raise
    if failure:
        raise failure[0]
    return outcome[0]
