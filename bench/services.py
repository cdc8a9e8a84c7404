"""Services the shared-cache benchmark starts for itself: a local registry and a second,
private Docker engine, each stopped (and its files removed) when the block ends."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import REPO_ROOT, BenchError

sys.path.insert(0, str(REPO_ROOT))
from tests.helpers.dockerd import NotStarted, private_dockerd  # noqa: E402  (the repo root, just added)


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
    """A private dockerd on its own socket and data root (root needed; see
    tests/helpers/dockerd.py); yields its DOCKER_HOST, or None when none can be started
    here (the shards then share the default engine)."""
    with contextlib.ExitStack() as stack:
        try:
            host: str | None = stack.enter_context(private_dockerd(root))
        except NotStarted:
            host = None
        yield host
