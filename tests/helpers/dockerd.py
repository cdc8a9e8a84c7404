"""A private dockerd: its own socket, data root, exec root and pidfile, networking off
(``--bridge=none``, no iptables), stopped with everything it held when the block ends.

No pytest here: the tests' ``second_engine`` fixture and the shared-cache benchmark
(whose environment has no test extras) both start theirs with ``private_dockerd``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_SECONDS = 60


class NotStarted(Exception):
    """Why no private engine runs here (no dockerd, not root, or it did not come up)."""


def answers(host: str) -> bool:
    """The engine at ``host`` answers a ping."""
    import docker

    try:
        client = docker.DockerClient(base_url=host, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - not up (yet), whatever docker-py raises
        return False


@contextmanager
def private_dockerd(root: Path) -> Iterator[str]:
    """Start a dockerd keeping everything under ``root``; yields its DOCKER_HOST
    (``unix:///...``). Raises NotStarted, saying why, when none can be started here."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise NotStarted("no dockerd here: apt-get install docker.io")
    if os.geteuid() != 0:
        raise NotStarted("starting a second Docker engine needs root")
    root.mkdir(parents=True, exist_ok=True)
    host = f"unix://{root / 'docker.sock'}"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [dockerd, "--host", host, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "docker.pid"), "--bridge=none", "--iptables=false", "--ip6tables=false"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while not answers(host):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                raise NotStarted(f"a second dockerd did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.2)
        yield host
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
