"""Fixtures the Docker-based reliability tests share (a module may define its own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from orchestrator.engine.dockerpy import Engine


@pytest.fixture
def client(docker_engine: Engine) -> Iterator[Any]:
    """docker-py itself, to see what the engine holds behind the orchestrator's back."""
    raw = docker.from_env()
    yield raw
    raw.close()


@pytest.fixture
def name(client: Any) -> Iterator[str]:
    """A container name for one test; whatever carries it is removed afterwards."""
    name = f"orchestrator-test-{uuid.uuid4().hex[:12]}"
    yield name
    for container in client.containers.list(all=True, filters={"name": name}):
        container.remove(force=True)
