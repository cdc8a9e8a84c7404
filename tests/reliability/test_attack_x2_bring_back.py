"""Copying a builder container's /src back is part of the build: it obeys the
artifact's timeout and Ctrl-C, and costs the host no more disk than the container used.

Before: a container that exited 0 after ``truncate -s 4G big`` (no disk used in the
container) made the orchestrator stream 4 GB of zeros onto the host's disk, past a 3 s
``timeout:`` (the build took 30 s and said ok), and Ctrl-C waited for the whole copy;
100 hard links to a 10 MB file (10 MB in the container) became 1 GB of copies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator import treecopy
from tests.helpers.cli import BIN
from tests.reliability.isolation_helpers import (
    Entry,
    Workspace,
    chunks_of,
    make_repo,
    tar_of,
)


def workspace(tmp_path: Path, busybox: str, command: str, timeout: str = "10m") -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, f"""
tool:
  type: binary
  builder: {busybox}
  command: {command} && echo tool > out
  outputs: [out]
  timeout: {timeout}
""")
    return ws


def disk_used(root: Path) -> int:
    """Bytes of disk under ``root``, each file counted once (as du does)."""
    seen: set[tuple[int, int]] = set()
    used = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            info = os.lstat(os.path.join(dirpath, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                used += info.st_blocks * 512
    return used


@pytest.mark.docker
def test_a_copy_back_that_outlasts_the_timeout_is_stopped_and_reported_as_timed_out(
    busybox: str, tmp_path: Path
) -> None:
    ws = workspace(tmp_path, busybox, "truncate -s 4G big", timeout="3s")

    started = time.monotonic()
    code, output = ws.run("build", "tool")
    took = time.monotonic() - started

    assert code == 1, output
    assert "did not finish before its deadline" in output
    assert took < 20, f"the build ran {took:.0f}s past a 3s timeout"
    assert not (ws.release / "bin" / "out").exists()


@pytest.mark.docker
def test_ctrl_c_during_the_copy_back_stops_it_at_once(busybox: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, busybox, "truncate -s 4G big && echo made")
    log = ws.root / ".build" / "logs" / "v1" / "tool.log"
    process = subprocess.Popen(
        [str(BIN / "orchestrator"), "build", "tool", "--manifest", str(ws.root / "manifest.yaml"),
         "--workspace", str(ws.root)],
        cwd=ws.root, env={**os.environ, "XDG_CACHE_HOME": str(ws.root / "cache")},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "made" in log.read_text().splitlines()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "made" in log.read_text().splitlines(), "the container never ran"
        time.sleep(1)  # well into the copy back

        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, _ = process.communicate(timeout=120)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 130, out
    assert took < 10, f"Ctrl-C took {took:.0f}s to stop the copy back"


@pytest.mark.docker
def test_hard_links_and_holes_cost_the_host_no_more_disk_than_the_container(busybox: str, tmp_path: Path) -> None:
    links = "for i in $(seq 100); do ln big link$i; done"
    ws = workspace(tmp_path, busybox, f"dd if=/dev/urandom of=big bs=1M count=10 2>/dev/null && {links} "
                                      "&& truncate -s 1G sparse")

    code, output = ws.run("build", "tool")

    assert code == 0, output
    assert (ws.checkout / "link100").read_bytes() == (ws.checkout / "big").read_bytes()
    assert (ws.checkout / "sparse").stat().st_size == 1 << 30
    used = disk_used(ws.checkout)
    assert used < 40 << 20, f"10 MB in the container took {used >> 20} MB on the host"


class Stop(Exception):
    pass


def test_a_copy_stopped_midway_leaves_the_tree_as_it_was_and_nothing_beside_it(tmp_path: Path) -> None:
    tree = tmp_path / "ws" / "tool"
    (tree / ".git").mkdir(parents=True)
    (tree / "main.c").write_text("int main;\n")
    data = tar_of(Entry("src", "dir", mode=0o755), Entry("src/big", data=bytes(1 << 20)), Entry("src/x", data=b"x"))
    chunks = 0

    def check() -> None:
        nonlocal chunks
        chunks += 1
        if chunks > 50:
            raise Stop

    with pytest.raises(Stop):
        treecopy.replace_tree(chunks_of(data, 4096), tree, log=lambda line: None, check=check)

    assert sorted(p.name for p in tree.iterdir()) == [".git", "main.c"]
    assert sorted(p.name for p in tree.parent.iterdir()) == ["tool"]
