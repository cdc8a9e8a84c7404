from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.engine import Engine
from orchestrator.errors import DockerUnavailableError
from tests.helpers.docker_images import busybox_image
from tests.helpers.fake_docker import FakeDockerClient


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "docker: needs a real Docker engine (skipped with the reason when none answers)")


class Lines(list[str]):
    """A ``log`` callback that keeps every line."""

    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def fake() -> FakeDockerClient:
    client = FakeDockerClient()
    client.add_image("orchestrator-test/busybox:1", env={"PATH": "/usr/bin:/bin"})
    return client


@pytest.fixture
def engine(fake: FakeDockerClient) -> Engine:
    return Engine(fake)


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A build context with one file; tests write the Dockerfile."""
    path = tmp_path / "context"
    path.mkdir()
    (path / "hello.txt").write_text("hello\n")
    return path


# -- a real engine ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_engine() -> Engine:
    """An Engine on the real Docker engine, or a skip that says why there is none."""
    try:
        return Engine.from_env(timeout=60)
    except DockerUnavailableError as e:
        pytest.skip(f"no Docker engine answers: {e.message}; start one with .ci/docker-up")


@pytest.fixture(scope="session")
def busybox(docker_engine: Engine) -> str:
    """``orchestrator-test/busybox:1`` in the real engine, imported offline on first use."""
    try:
        busybox_image(docker_engine)
    except LookupError as e:
        pytest.skip(str(e))
    return "orchestrator-test/busybox:1"


@dataclass(frozen=True)
class Registry:
    address: str  # host:port
    username: str | None = None
    password: str | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_registry(tmp_path: Path, *, auth: tuple[str, str] | None) -> Iterator[Registry]:
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        pytest.skip("no container registry binary: apt-get install docker-registry (Debian's distribution registry)")
    port = _free_port()
    config = [
        "version: 0.1",
        "log: {level: error}",
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}",
        f"http: {{addr: 127.0.0.1:{port}}}",
    ]
    if auth is not None:
        hashed = subprocess.run(
            ["htpasswd", "-Bbn", *auth], check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL
        ).stdout
        (tmp_path / "htpasswd").write_text(hashed)
        config.append(f"auth: {{htpasswd: {{realm: test, path: {tmp_path / 'htpasswd'}}}}}")
    (tmp_path / "config.yml").write_text("\n".join(config) + "\n")
    log = (tmp_path / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(tmp_path / "config.yml")], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:  # 401: up, and asking for credentials
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the registry did not start: {(tmp_path / 'registry.log').read_text()}")
        yield Registry(f"127.0.0.1:{port}", *(auth or (None, None)))
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def registry(tmp_path: Path, docker_engine: Engine) -> Iterator[Registry]:
    """A local registry without authentication (the engine trusts 127.0.0.1 over plain HTTP)."""
    yield from _start_registry(tmp_path, auth=None)


@pytest.fixture
def auth_registry(tmp_path: Path, docker_engine: Engine) -> Iterator[Registry]:
    """A local registry that wants user ``ci``."""
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is missing: apt-get install apache2-utils")
    yield from _start_registry(tmp_path, auth=("ci", "s3cret-Pa55"))


def docker_config_with(tmp_path: Path, registry: Registry) -> Path:
    """A DOCKER_CONFIG directory holding `docker login` credentials for ``registry``."""
    import base64
    import json

    assert registry.username is not None and registry.password is not None
    token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    directory = tmp_path / "docker-config"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": token}}}))
    os.chmod(directory / "config.json", 0o600)
    return directory
