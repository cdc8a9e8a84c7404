"""Canned Docker Engine payloads for the fake client, copied from a real engine.

Recorded against dockerd 20.10 (API 1.41, Debian's docker.io) through docker-py 7.x,
the way docker-py's own ``tests/unit/fake_api.py`` keeps its payloads in one place.
The classic builder sends "Step n/m : ..." and its newline as two chunks; errors come
inside the stream as ``{"errorDetail": {...}, "error": ...}``, except those the engine
finds before it starts (missing or unparsable Dockerfile), which are HTTP errors that
docker-py raises as ``APIError`` on the first ``next()`` of the stream.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
from typing import Any

import requests
import urllib3.exceptions
from docker import errors

API_VERSION = "1.41"
BASE_URL = f"http+docker://localhost/v{API_VERSION}"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

VERSION = {
    "Version": "20.10.24+dfsg1",
    "ApiVersion": API_VERSION,
    "MinAPIVersion": "1.12",
    "Os": "linux",
    "Arch": "amd64",
}

Chunk = dict[str, Any]

# -- build ---------------------------------------------------------------------------


def step(number: int, total: int, instruction: str) -> list[Chunk]:
    return [{"stream": f"Step {number}/{total} : {instruction}"}, {"stream": "\n"}]


def layer(short_id: str) -> Chunk:
    return {"stream": f" ---> {short_id}\n"}


def running_in(container_short_id: str) -> Chunk:
    return {"stream": f" ---> Running in {container_short_id}\n"}


def removing(container_short_id: str) -> Chunk:
    return {"stream": f"Removing intermediate container {container_short_id}\n"}


def built(image_id: str) -> list[Chunk]:
    return [{"aux": {"ID": image_id}}, {"stream": f"Successfully built {image_id[7:19]}\n"}]


def tagged(ref: str) -> Chunk:
    return {"stream": f"Successfully tagged {ref}\n"}


def unused_buildargs(names: list[str]) -> Chunk:
    return {"stream": f"[Warning] One or more build-args [{' '.join(names)}] were not consumed\n"}


def error_chunk(message: str, code: int | None = None) -> Chunk:
    detail: dict[str, Any] = {"message": message}
    if code is not None:
        detail = {"code": code, "message": message}
    return {"errorDetail": detail, "error": message}


def run_failed(command: str, code: int) -> str:
    return f"The command '/bin/sh -c {command}' returned a non-zero code: {code}"


def stderr_text(text: str) -> str:
    """How the classic builder colours a RUN step's stderr inside a 'stream' chunk."""
    return f"\x1b[91m{text}\x1b[0m"


MISSING_DOCKERFILE = "Cannot locate specified Dockerfile: {dockerfile}"
EMPTY_DOCKERFILE = "the Dockerfile ({dockerfile}) cannot be empty"
NO_BUILD_STAGE = "no build stage in current context"
PARSE_ERROR = "dockerfile parse error line {line}: unknown instruction: {word}"
MISSING_TARGET = "failed to reach build target {target} in Dockerfile"
COPY_MISSING = (
    "COPY failed: file not found in build context or excluded by .dockerignore: stat {source}: file does not exist"
)
# FROM an image the engine lacks: it tries to pull, and this machine has no network.
PULL_OFFLINE = (
    'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host'
)

# -- images, containers ------------------------------------------------------------------

NO_SUCH_IMAGE_INSPECT = "no such image: {ref}: No such image: {ref}"
NO_SUCH_IMAGE = "No such image: {ref}"
NO_SUCH_CONTAINER = "No such container: {id}"
IMAGE_IN_USE = "conflict: unable to delete {ref} (must be forced) - image is referenced in multiple repositories"
CANNOT_KILL = "Cannot kill container: {id}: Container {id} is not running"
REMOVE_RUNNING = (
    "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
)
EXEC_NOT_FOUND = (
    "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container "
    'process: exec: "{command}": executable file not found in $PATH: unknown'
)
NETWORK_NOT_FOUND = "network {name} not found"
NO_SUCH_PATH = "Could not find the file {path} in container {id}"
ARCHIVE_CHUNK_SIZE = 2 * 1024 * 1024  # docker-py's DEFAULT_DATA_CHUNK_SIZE
NO_IMAGE_GENERATED = "No image was generated. Is your Dockerfile empty?"
IMPORT_NOT_A_FILE = 'Get "http://{src}": http: no Host in request URL'


def import_reply(image_id: str) -> str:
    return json.dumps({"status": image_id}, separators=(",", ":")) + "\r\n"


# Go's os.FileMode bits, as the engine reports them in X-Docker-Container-Path-Stat.
_GO_MODE_BITS = (
    (stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISFIFO, 1 << 25),
    (stat.S_ISCHR, (1 << 26) | (1 << 21)), (stat.S_ISBLK, 1 << 26), (stat.S_ISSOCK, 1 << 24),
)  # fmt: skip


def path_stat(name: str, info: os.stat_result, link_target: str = "") -> dict[str, Any]:
    """The stat dict ``get_archive`` returns, e.g. for /src of a fresh container:
    ``{'name': 'src', 'size': 4096, 'mode': 2147484141, 'mtime': '1970-01-01T00:00:00Z', 'linkTarget': ''}``."""
    mode = info.st_mode & 0o777
    mode |= (1 << 23 if info.st_mode & stat.S_ISUID else 0) | (1 << 22 if info.st_mode & stat.S_ISGID else 0)
    mode |= 1 << 20 if info.st_mode & stat.S_ISVTX else 0
    mode |= next((bit for test, bit in _GO_MODE_BITS if test(info.st_mode)), 0)
    when = datetime.datetime.fromtimestamp(info.st_mtime, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"name": name, "size": info.st_size, "mode": mode, "mtime": when, "linkTarget": link_target}


def wait_reply(exit_code: int) -> dict[str, Any]:
    return {"Error": None, "StatusCode": exit_code}


# -- push ------------------------------------------------------------------------------


def push_refers(repository: str) -> Chunk:
    return {"status": f"The push refers to repository [{repository}]"}


def push_ok(repository: str, tag: str, layer_id: str, digest: str, size: int = 524) -> list[Chunk]:
    return [
        push_refers(repository),
        {"status": "Preparing", "progressDetail": {}, "id": layer_id},
        {
            "status": "Pushing",
            "progressDetail": {"current": 512, "total": 3},
            "progress": "[==================================================>]     512B",
            "id": layer_id,
        },
        {"status": "Pushed", "progressDetail": {}, "id": layer_id},
        {"status": f"{tag}: digest: {digest} size: {size}"},
        {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}},
    ]


PULL_UNKNOWN = "manifest for {ref} not found: manifest unknown: manifest unknown"
PUSH_NO_CREDENTIALS = "no basic auth credentials"
PUSH_UNAUTHORIZED = "unauthorized: authentication required"
PUSH_NOT_LOCAL = "An image does not exist locally with the tag: {repository}"
PUSH_UNREACHABLE = 'Get "http://{registry}/v2/": dial tcp 127.0.0.1:5999: connect: connection refused'


# -- errors shaped like docker-py's --------------------------------------------------------


def response(status: int, reason: str, path: str, explanation: str) -> requests.Response:
    reply = requests.Response()
    reply.status_code = status
    reply.reason = reason
    reply.url = f"{BASE_URL}{path}"
    reply._content = json.dumps({"message": explanation}).encode()
    return reply


_REASONS = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}


def api_error(status: int, path: str, explanation: str, cls: type[errors.APIError] | None = None) -> errors.APIError:
    """The exception docker-py raises for an HTTP error (``create_api_error_from_http_exception``)."""
    if cls is None:
        cls = errors.NotFound if status == 404 else errors.APIError
        if status == 404 and "no such image" in explanation.lower():
            cls = errors.ImageNotFound
    reply = response(status, _REASONS.get(status, "Error"), path, explanation)
    http_error = requests.exceptions.HTTPError(f"{status} {reply.reason} for url: {reply.url}", response=reply)
    error = cls(http_error, response=reply, explanation=explanation)
    error.__cause__ = http_error
    return error


def connection_aborted() -> requests.exceptions.ConnectionError:
    """What docker-py raises when the socket is missing (no dockerd)."""
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", FileNotFoundError(2, "No such file or directory"))
    )


def version_fetch_failed(cause: BaseException) -> errors.DockerException:
    """What ``docker.from_env()`` raises when it cannot ask the engine for its API version."""
    error = errors.DockerException(f"Error while fetching server API version: {cause}")
    error.__cause__ = cause
    return error


def read_timeout(path: str) -> urllib3.exceptions.ReadTimeoutError:
    """A streamed response (build) that stays silent past docker-py's ``timeout``."""
    return urllib3.exceptions.ReadTimeoutError(None, path, "Read timed out.")  # type: ignore[arg-type]


def wait_timeout(path: str) -> requests.exceptions.ConnectionError:
    """``container.wait(timeout=...)`` past its timeout: ConnectionError, not the documented ReadTimeout."""
    return requests.exceptions.ConnectionError(read_timeout(path))
