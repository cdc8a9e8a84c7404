"""Plain GET requests to a Docker engine on a local unix socket, without docker-py.

A warm no-op build asks the engine two things: is it there (``/_ping``), and which
images carry the cache-key label (one ``/images/json`` list call). Importing docker-py
(requests, urllib3) costs more than the rest of such a run, so when the engine is on a
unix socket (DOCKER_HOST unset or ``unix://``) these two questions go straight to the
socket; everything that acts (builds, containers, pushes) still goes through docker-py,
imported on first use (``orchestrator.engine.dockerpy.Engine.connect``).
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Mapping
from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"
MAX_REPLY_BYTES = 256 * 1024 * 1024


class ReplyError(Exception):
    """The engine answered with an error status, or with something that is not HTTP."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status


def local_socket(environ: Mapping[str, str]) -> str | None:
    """The unix socket path the engine is reached on, or None when it is elsewhere
    (tcp://, ssh://, a named pipe): docker-py is needed for those."""
    host = environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://") and len(host) > len("unix://"):
        return host[len("unix://"):]
    return None


class SocketAPI:
    """One GET per connection (HTTP/1.0: the engine closes it after the body)."""

    def __init__(self, path: str, *, timeout: float = 60.0) -> None:
        self.path, self.timeout = path, timeout

    def ping(self) -> None:
        """Raises OSError when nothing answers on the socket, ReplyError when it is no engine."""
        self._get("/_ping")

    def images(self, label: str) -> list[dict[str, Any]]:
        """``GET /images/json`` filtered by ``label`` (a key, or key=value): the engine's
        summary of each image (Id, RepoTags, Labels)."""
        query = urllib.parse.urlencode({"filters": json.dumps({"label": [label]})})
        reply = json.loads(self._get(f"/images/json?{query}"))
        if not isinstance(reply, list) or not all(isinstance(item, dict) for item in reply):
            raise ReplyError(0, "the engine's image list is not a list of objects")
        return reply

    def get_image(self, ref: str) -> bytes:
        """``GET /images/<ref>/json``: the image's inspection; ReplyError 404 when there is none."""
        return self._get(f"/images/{urllib.parse.quote(ref, safe='')}/json")

    def _get(self, target: str) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(self.timeout)
            conn.connect(self.path)
            conn.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\nUser-Agent: release-orchestrator\r\n\r\n".encode())
            chunks: list[bytes] = []
            total = 0
            while data := conn.recv(1 << 16):
                total += len(data)
                if total > MAX_REPLY_BYTES:
                    raise ReplyError(0, f"the engine's reply is larger than {MAX_REPLY_BYTES} bytes")
                chunks.append(data)
        head, separator, body = b"".join(chunks).partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if not separator or len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") \
                or not status_line[1].isdigit():
            raise ReplyError(0, "the socket does not speak HTTP")
        status = int(status_line[1])
        if status != 200:
            raise ReplyError(status, _message(body))
        return body


def _message(body: bytes) -> str:
    """The engine's ``{"message": ...}``, else the body's first line."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"])
    return body.decode("utf-8", "replace").strip().splitlines()[0][:200] if body.strip() else "no message"
