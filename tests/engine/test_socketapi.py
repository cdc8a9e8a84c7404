"""Engine.connect: an engine on a local socket is pinged and asked about images without
docker-py, which is imported only when something must be built, run or pushed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import EngineError
from orchestrator.engine.socketapi import SocketAPI, local_socket
from orchestrator.errors import DockerUnavailableError

IMAGE_ID = "sha256:" + "ab" * 32
INSPECTION = {"Id": IMAGE_ID, "RepoTags": ["calico/node:v3.2.0", "quay.io/calico/node:v3.2.0"],
              "Config": {"Labels": {"io.github.release-orchestrator.cache-key": "k" * 64}}}


class FakeEngineSocket:
    """A unix socket answering like dockerd: /_ping, /images/<ref>/json, 404 otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[str] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                target = request.split(b" ")[1].decode()
                self.requests.append(target)
                if target == "/_ping":
                    status, body = 200, b"OK"
                elif target.startswith("/images/calico%2Fnode%3Av3.2.0/json") or target.startswith(
                        f"/images/{IMAGE_ID.replace(':', '%3A')}/json"):
                    status, body = 200, json.dumps(INSPECTION).encode()
                elif target.startswith("/images/broken"):
                    status, body = 500, b'{"message": "the engine is unwell"}'
                else:
                    status, body = 404, b'{"message": "No such image"}'
                conn.sendall(b"HTTP/1.0 %d X\r\nContent-Type: application/json\r\n\r\n%s" % (status, body))

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def engine_socket(tmp_path: Path) -> Iterator[FakeEngineSocket]:
    server = FakeEngineSocket(tmp_path / "docker.sock")
    yield server
    server.close()


def test_the_socket_is_the_default_one_or_a_unix_docker_host_and_nothing_else() -> None:
    assert local_socket({}) == "/var/run/docker.sock"
    assert local_socket({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}) == "/run/user/1000/docker.sock"
    assert local_socket({"DOCKER_HOST": "tcp://127.0.0.1:2375"}) is None
    assert local_socket({"DOCKER_HOST": "ssh://builder"}) is None


def test_one_inspection_answers_id_tags_and_labels(engine_socket: FakeEngineSocket,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine_socket.path}")

    engine = Engine.connect(timeout=5)
    info = engine.inspect_image("calico/node:v3.2.0")
    missing = engine.inspect_image("calico/felix:v3.2.0")

    assert info is not None and info.id == IMAGE_ID
    assert info.tags == ("calico/node:v3.2.0", "quay.io/calico/node:v3.2.0")
    assert info.labels == INSPECTION["Config"]["Labels"]  # type: ignore[index]
    assert missing is None
    assert engine_socket.requests == ["/_ping", "/images/calico%2Fnode%3Av3.2.0/json",
                                      "/images/calico%2Ffelix%3Av3.2.0/json"]


def test_an_engine_error_is_an_engine_error_and_a_lost_socket_says_so(engine_socket: FakeEngineSocket,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine_socket.path}")
    engine = Engine.connect(timeout=5)

    with pytest.raises(EngineError, match="the engine is unwell"):
        engine.inspect_image("broken")
    engine_socket.close()
    engine_socket.path.unlink()
    with pytest.raises(DockerUnavailableError, match="lost contact with the Docker engine while inspecting"):
        engine.inspect_image("calico/node:v3.2.0")


def test_no_engine_on_the_socket_says_where_why_and_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    with pytest.raises(DockerUnavailableError) as caught:
        Engine.connect(timeout=5)

    assert str(caught.value) == ("cannot reach the Docker engine at unix:///nonexistent/docker.sock: "
                                 "No such file or directory\n"
                                 "  hint: start Docker or set DOCKER_HOST to a running engine")


def test_something_that_is_not_an_engine_on_the_socket_is_refused(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "not-docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    threading.Thread(target=answer, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")

    with pytest.raises(DockerUnavailableError, match="does not speak HTTP"):
        Engine.connect(timeout=5)
    server.close()


def test_looking_images_up_over_the_socket_never_imports_docker_py(engine_socket: FakeEngineSocket) -> None:
    code = ("import sys; from orchestrator.engine.dockerpy import Engine; e = Engine.connect(timeout=5); "
            "assert e.inspect_image('calico/node:v3.2.0') is not None; "
            "print(sorted(m for m in ('docker', 'requests', 'urllib3') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{engine_socket.path}"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_socket_client_raises_os_error_when_nothing_listens(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        SocketAPI(str(tmp_path / "none.sock"), timeout=1).ping()
