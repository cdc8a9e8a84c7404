"""Readers never block: `verify --offline` answers while a fetch elsewhere is stalled.

verify takes no workspace lock, but it resolves pins through the same code as a fetch,
under each mirror's lock, even offline, where it only reads the mirror. A fetch of the
same repository in another workspace sharing the cache, stalled on its remote, holds that
lock: verify says "waiting for the lock" and waits (up to 30 minutes, LOCK_TIMEOUT).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from orchestrator import procs
from tests.helpers.gitrepos import build_upstream
from tests.reliability.sources_helpers import (
    cli_env,
    run_token_of,
    stalling_remote,
    start_cli,
    wait_for,
    write_manifest,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


@pytest.mark.xfail(strict=True, reason="attack-x3 (degraded, not fixed): offline pin checks wait for the mirror lock")
def test_verify_offline_does_not_wait_for_a_stalled_fetch_in_another_workspace(tmp_path: Path) -> None:
    upstream = build_upstream(tmp_path / "upstream")
    remote = stalling_remote(tmp_path)
    url = remote.url(upstream.path)
    built = write_manifest(tmp_path / "built.yaml", {"felix": (url, "v1.0")})
    ws = tmp_path / "ws"
    env = cli_env(ws, GIT_SSH_COMMAND=str(remote.ssh))
    first = start_cli(ws, "build", "--all", "--manifest", str(built), env=env)
    assert first.wait(120) == 0, first.communicate()

    remote.stall()
    other = write_manifest(tmp_path / "other.yaml", {"felix": (url, "v1.1")})
    writer = start_cli(tmp_path / "elsewhere", "fetch", "--all", "--manifest", str(other), env=env)
    try:
        wait_for(remote.stalled, what="the other workspace's fetch to stall")
        reader = start_cli(ws, "verify", "--offline", "--manifest", str(built), env=env)
        try:
            _, err = reader.communicate(timeout=20)  # a reader of a mirror waits for nobody
        except subprocess.TimeoutExpired:
            os.killpg(reader.pid, signal.SIGKILL)
            _, err = reader.communicate()
            pytest.fail(f"verify --offline waited for another workspace's fetch:\n{err}")
        assert "waiting for the lock" not in err
    finally:
        tokens = [run_token_of(pid) for pid in remote.stalled()]
        os.killpg(writer.pid, signal.SIGKILL)
        writer.wait()
        for token in tokens:
            procs.kill(procs.RUN_VARIABLE, token)
