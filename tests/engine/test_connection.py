"""Engine.from_env: reaching the engine, and saying why not."""

from __future__ import annotations

import subprocess
import sys

import docker
import pytest
from docker import errors

from orchestrator.engine.dockerpy import Engine
from orchestrator.errors import DockerUnavailableError
from tests.helpers.fake_docker import FakeDockerClient


def test_an_engine_that_answers_is_pinged(fake: FakeDockerClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker, "from_env", fake.from_env)

    assert isinstance(Engine.from_env(timeout=30), Engine)
    assert fake.calls_to("from_env") == [{"version": None, "timeout": 30}]
    assert fake.calls_to("ping") == [{}]


def test_no_engine_on_the_default_socket_says_where_why_and_what_to_do(
    fake: FakeDockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(docker, "from_env", fake.from_env)
    fake.make_unreachable()

    with pytest.raises(DockerUnavailableError) as caught:
        Engine.from_env()

    assert str(caught.value) == (
        "cannot reach the Docker engine at unix:///var/run/docker.sock (the default socket): "
        "No such file or directory\n"
        "  hint: start Docker or set DOCKER_HOST to a running engine"
    )
    assert isinstance(caught.value.__cause__, errors.DockerException)


def test_docker_host_is_named_without_its_credentials(fake: FakeDockerClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://admin:hunter2@build-host:2375")
    monkeypatch.setattr(docker, "from_env", fake.from_env)
    fake.make_unreachable()

    with pytest.raises(DockerUnavailableError) as caught:
        Engine.from_env()

    assert "at tcp://***@build-host:2375:" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_the_real_client_without_a_socket_gives_the_same_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    with pytest.raises(DockerUnavailableError) as caught:
        Engine.from_env(timeout=5)

    assert str(caught.value).startswith(
        "cannot reach the Docker engine at unix:///nonexistent/docker.sock: No such file or directory"
    )


def test_the_real_client_with_nothing_listening_says_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")

    with pytest.raises(DockerUnavailableError, match="at tcp://127.0.0.1:1: Connection refused"):
        Engine.from_env(timeout=5)


def test_importing_the_engine_does_not_import_docker() -> None:
    code = ("import sys, orchestrator.engine.dockerpy; "
            "print(sorted(m for m in ('docker', 'requests') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"
