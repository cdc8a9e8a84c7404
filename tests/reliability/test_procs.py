"""Finding a run's processes again by the token in their environment."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator import procs

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


def test_orphans_of_a_token_are_found_and_killed_even_after_their_parent_died(tmp_path: Path) -> None:
    token = procs.new_token()
    env = {**os.environ, procs.RUN_VARIABLE: token}
    # The shell starts a sleeper in the background and exits: the sleeper is re-parented.
    subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $! > pid"], cwd=tmp_path, env=env, check=True)
    orphan = int((tmp_path / "pid").read_text())
    assert procs.find(procs.RUN_VARIABLE, token) == [orphan]
    assert procs.find(procs.RUN_VARIABLE, procs.new_token()) == []
    assert procs.kill(procs.RUN_VARIABLE, token) == [orphan]
    assert not procs.alive(orphan)
    assert procs.find(procs.RUN_VARIABLE, token) == []


def test_an_owner_is_alive_only_while_its_very_process_runs(tmp_path: Path) -> None:
    me = procs.me()
    assert me.alive
    procs.write_owner(tmp_path / "owner.json", me)
    assert procs.read_owner(tmp_path / "owner.json") == me
    child = subprocess.Popen(["sleep", "60"])
    try:
        owner = procs.Owner(pid=child.pid, started=procs.start_time(child.pid), token="t", command="sleep",
                            since=time.time())
        assert owner.alive
        reused = procs.Owner(pid=child.pid, started=(owner.started or 0) - 1, token="t", command="x", since=0)
        assert not reused.alive  # same pid, another start time: a different process
    finally:
        child.kill()
        child.wait()
    assert not owner.alive


def test_an_unreadable_owner_record_is_none(tmp_path: Path) -> None:
    path = tmp_path / "owner.json"
    assert procs.read_owner(path) is None
    path.write_text("{not json")
    assert procs.read_owner(path) is None
    path.write_text('{"pid": "x"}')
    assert procs.read_owner(path) is None


def test_an_owner_record_that_is_not_a_small_regular_file_is_none_and_read_at_once(tmp_path: Path) -> None:
    (tmp_path / "zero").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_text("{" + " " * 70000 + "}")
    for name in ("zero", "fifo", "big"):
        assert procs.read_owner(tmp_path / name) is None, name
