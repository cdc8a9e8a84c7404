"""Image builds through docker-py's classic builder, and how a cancel reaches one.

A build under way can be stopped three ways, all from ``cancel_all``: its RUN step's
container is killed (again and again, as the engine ignores a kill that comes before
the step runs), its HTTP stream is cut (a build can wait silently outside any RUN step),
and every chunk checks the cancel flag.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.engine.connection import (
    Connection,
    DockerClient,
    docker_errors,
    explain,
    is_read_timeout,
    quietly,
    sever,
)
from orchestrator.engine.errors import Cancelled, DeadlineExceeded, EngineError, ImageBuildFailed
from orchestrator.engine.protocol import BuiltImage, Log
from orchestrator.engine.socketapi import SocketAPI
from orchestrator.engine.stream import BUILT, RUNNING_IN, Output, chunk_error, redact_text
from orchestrator.errors import DockerUnavailableError
from orchestrator.imageref import split_tag


class ImageBuilds(Connection):
    """``build_image``, and the builds under way that ``cancel_all`` must stop."""

    def __init__(self, client: DockerClient | None, *, workspace: Path | None = None,
                 connect: Callable[[], DockerClient] | None = None, light: SocketAPI | None = None) -> None:
        super().__init__(client, workspace=workspace, connect=connect, light=light)
        self._build_steps: set[str] = set()  # containers of RUN steps in builds under way
        # The HTTP responses of builds under way: a build can wait silently with no RUN step
        # to kill (ADD from a server that hangs, a FROM pulled from a registry that hangs), its
        # thread in a read bounded only by the deadline. cancel_all cuts the connection, which
        # ends that read, and the engine abandons the build (and removes its RUN container).
        self._build_streams: set[Any] = set()
        self._starting = threading.local()  # the build this thread is starting: see _note_response
        if client is not None:
            self._connected(client)

    def _connected(self, client: DockerClient) -> None:
        super()._connected(client)
        hooks = getattr(getattr(client, "api", None), "hooks", None)  # requests' hooks; absent in fakes
        if isinstance(hooks, dict) and isinstance(hooks.get("response"), list):
            hooks["response"].append(self._note_response)

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
        errors = docker_errors()
        name = tags[0] if tags else str(context / dockerfile)
        what = f"building image {name}"
        budget = self._start(what, deadline)
        out = Output(log)
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
                        if error := chunk_error(chunk):
                            out.feed(f"ERROR: {error}\n")
                            raise ImageBuildFailed(name, redact_text(error), output=out.text)
                        text = chunk.get("stream") or chunk.get("status")
                        if isinstance(text, str):
                            # Known to cancel_all *before* anyone sees the line: a caller that
                            # cancels on "Running in" must find the step to kill.
                            if match := RUNNING_IN.search(text):  # so that cancel_all can kill a silent RUN step
                                with self._lock:
                                    self._build_steps.discard(step or "")
                                    self._build_steps.add(step := match.group(1))
                                    late = self._cancelled
                                if late:  # cancel_all ran between our check above and now
                                    quietly(functools.partial(self._client.api.kill, step))
                                    raise Cancelled(what)
                            out.feed(text)
                            if match := BUILT.search(text):
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
            raise ImageBuildFailed(name, explain(e), output=out.text, hint=hint) from e
        except errors.DockerException as e:  # raised before any request, e.g. an invalid tag
            raise ImageBuildFailed(name, redact_text(str(e)), output=out.text) from e
        except DockerUnavailableError as e:
            if self._cancelled:  # cancel_all cut the stream
                raise Cancelled(what) from e
            if budget is not None and is_read_timeout(e.__cause__ or e):
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
                    raise EngineError(f"tagging image {name} as {ref} failed: {explain(e)}") from e
        return BuiltImage(id=image_id, tags=tuple(tags))

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
            sever(response)

    def _cut_build_streams(self) -> None:
        """Cut the HTTP stream of every build under way: a build silent outside a RUN step
        has nothing else to stop it."""
        with self._lock:
            streams = list(self._build_streams)
        for response in streams:
            sever(response)

    def _kill_build_steps(self, wait: float) -> None:
        """Kill the RUN step of every build under way, again and again until its build has
        ended or ``wait`` seconds have passed."""
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                steps = list(self._build_steps)
            for step in steps:  # the build then fails with exit code 137, which its thread reports as Cancelled
                quietly(functools.partial(self._client.api.kill, step))
            if not steps or time.monotonic() >= deadline:
                return
            time.sleep(0.1)
