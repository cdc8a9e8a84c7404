"""A second, private Docker engine for the tests: its own socket, data, exec root and pidfile.

Started by the ``second_engine`` fixture (once per session) and stopped with everything
it held: nothing of it outlives the session, and it never touches the default engine's
images or containers. Networking is off (``--bridge=none``, no iptables), as for the
first engine. Skips, saying why, when this machine cannot start one (no dockerd, not root).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

START_SECONDS = 60


@dataclass(frozen=True)
class SecondEngine:
    host: str  # DOCKER_HOST for it: unix:///...
    root: Path

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)


def _answers(host: str) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=host, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def second_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondEngine]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.skip("no dockerd here: apt-get install docker.io")
    if os.geteuid() != 0:
        pytest.skip("starting a second Docker engine needs root")
    root = tmp_path_factory.mktemp("engine2")
    host = f"unix://{root / 'docker.sock'}"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [dockerd, "--host", host, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "docker.pid"), "--bridge=none", "--iptables=false", "--ip6tables=false"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(host):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                pytest.skip(f"a second dockerd did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.2)
        yield SecondEngine(host=host, root=root)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        # Its containerd (a child in the same session) goes with it; then its files.
        subprocess.run(["pkill", "-KILL", "-f", str(root / "exec")], check=False)
        subprocess.run(["umount", "-R", "-l", str(root / "data")], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
