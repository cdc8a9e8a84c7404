from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
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
