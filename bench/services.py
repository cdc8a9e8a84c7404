"""Services the shared-cache benchmark starts for itself: a local registry and a second,
private Docker engine, each stopped (and its files removed) when the block ends."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import BenchError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def registry(root: Path) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port, storing under ``root``; yields host:port."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        raise BenchError("no registry binary: apt-get install docker-registry")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text("\n".join([
        "version: 0.1", "log: {level: error}", f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}",
        f"http: {{addr: 127.0.0.1:{port}}}"]) + "\n")
    log = (root / "registry.log").open("w")
    process = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise BenchError("the registry did not start: " + (root / "registry.log").read_text()[-500:])
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def stored_bytes(root: Path) -> int:
    """Bytes the registry holds (blobs and manifests): what was uploaded, each blob once."""
    return sum(p.stat().st_size for p in (root / "data").rglob("*") if p.is_file()) if (root / "data").exists() else 0


@contextmanager
def second_engine(root: Path) -> Iterator[str | None]:
    """A private dockerd on its own socket and data root (root needed); yields its DOCKER_HOST,
    or None when none can be started here (the shards then share the default engine)."""
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        yield None
        return
    root.mkdir(parents=True, exist_ok=True)
    host = f"unix://{root / 'docker.sock'}"
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [dockerd, "--host", host, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
         "--pidfile", str(root / "docker.pid"), "--bridge=none", "--iptables=false", "--ip6tables=false"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        import docker

        deadline = time.monotonic() + 60
        while True:
            try:
                client = docker.DockerClient(base_url=host, timeout=5)
                client.ping()
                client.close()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if process.poll() is not None or time.monotonic() > deadline:
                    yield None
                    return
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
        subprocess.run(["umount", "-R", "-l", str(root / "data")], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
