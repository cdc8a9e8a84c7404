"""Fixtures for tests of finished releases (publish, verify): a small manifest, a
fake Docker client holding its images, and a release directory recording them.

Import the fixtures into a test module to use them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.manifest import Manifest
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import add_images, make_release, small_manifest


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return small_manifest(tmp_path)


@pytest.fixture
def fake() -> FakeDockerClient:
    return FakeDockerClient()


@pytest.fixture
def release_dir(tmp_path: Path, manifest: Manifest, fake: FakeDockerClient) -> Path:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest))
    return release_dir
