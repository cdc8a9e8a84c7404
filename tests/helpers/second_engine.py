"""A second, private Docker engine for the tests: its own socket, data, exec root and pidfile.

Started by the ``second_engine`` fixture (once per session) and stopped with everything
it held: nothing of it outlives the session, and it never touches the default engine's
images or containers. Networking is off (``--bridge=none``, no iptables), as for the
first engine. Skips, saying why, when this machine cannot start one (no dockerd, not root).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.dockerd import NotStarted, private_dockerd


@dataclass(frozen=True)
class SecondEngine:
    host: str  # DOCKER_HOST for it: unix:///...
    root: Path

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)


@pytest.fixture(scope="session")
def second_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondEngine]:
    root = tmp_path_factory.mktemp("engine2")
    with contextlib.ExitStack() as stack:
        try:
            host = stack.enter_context(private_dockerd(root))
        except NotStarted as why:
            pytest.skip(str(why))
        yield SecondEngine(host=host, root=root)
