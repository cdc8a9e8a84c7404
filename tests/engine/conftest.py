from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from tests.helpers import registry as real
from tests.helpers.docker_images import busybox_image
from tests.helpers.fake_docker import FakeDockerClient

# The real engine and the local registries live in tests/helpers/registry.py, shared with
# tests/test_publish.py; pytest finds fixtures by name in this module.
docker_engine, registry, auth_registry = real.docker_engine, real.registry, real.auth_registry
Registry, docker_config_with = real.Registry, real.docker_config_with


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
def busybox(docker_engine: Engine) -> str:
    """``orchestrator-test/busybox:1`` in the real engine, imported offline on first use."""
    try:
        busybox_image(docker_engine)
    except LookupError as e:
        pytest.skip(str(e))
    return "orchestrator-test/busybox:1"
