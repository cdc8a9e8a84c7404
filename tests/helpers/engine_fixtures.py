"""Fixtures on the real engine shared by many modules (a pytest plugin, see tests/conftest.py)."""

from __future__ import annotations

import pytest

from orchestrator.engine.dockerpy import Engine
from tests.helpers.docker_images import BUSYBOX_REF, busybox_image


@pytest.fixture(scope="session")
def busybox(docker_engine: Engine) -> str:
    """``orchestrator-test/busybox:1`` in the real engine, imported offline on first use."""
    try:
        busybox_image(docker_engine)
    except LookupError as e:
        pytest.skip(str(e))
    return BUSYBOX_REF
