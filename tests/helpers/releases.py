"""Fixtures for tests of finished releases (publish, verify): a small manifest, a
fake Docker client holding its images, and a release directory recording them.

A pytest plugin (tests/conftest.py): a test asks for ``manifest``, ``fake`` or
``release_dir`` by name; a module or conftest that defines its own wins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.manifest import Manifest
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import add_images, layers_of, make_release, small_manifest


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return small_manifest(tmp_path)


@pytest.fixture
def fake() -> FakeDockerClient:
    return FakeDockerClient()


@pytest.fixture
def release_dir(tmp_path: Path, manifest: Manifest, fake: FakeDockerClient) -> Path:
    release_dir = tmp_path / "dist" / manifest.release
    ids = add_images(fake, manifest)
    make_release(release_dir, manifest, ids, layers=layers_of(fake, ids))
    return release_dir
