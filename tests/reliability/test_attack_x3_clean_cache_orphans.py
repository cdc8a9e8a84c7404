"""`clean --cache` takes a mirror's lock like a fetch does, so it must first stop what a
killed holder of that lock left running, as a fetch does, before it removes the mirror.

A fetch killed with kill -9 against a remote that stalls leaves processes (the ssh
transport, still carrying the dead run's token) writing into the mirror. Another workspace
sharing the cache (or the same user's `verify`) has no workspace record naming that run:
the mirror lock's owner record is the only trace. Without the fix, `clean --cache` took the
free lock, removed the mirror and said "freed", while the dead run's processes ran on.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import procs
from orchestrator.sources import mirror_name
from tests.helpers.gitrepos import Upstream, build_upstream
from tests.reliability.sources_helpers import (
    StallingRemote,
    cli_env,
    run_token_of,
    stalling_remote,
    start_cli,
    wait_for,
    write_manifest,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return build_upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[StallingRemote]:
    remote = stalling_remote(tmp_path)
    yield remote
    for pid in remote.relays():
        with contextlib.suppress(OSError, AssertionError):
            procs.kill(procs.RUN_VARIABLE, run_token_of(pid))
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_clean_cache_stops_a_killed_fetchs_orphans_before_it_removes_their_mirror(
        upstream: Upstream, remote: StallingRemote, tmp_path: Path) -> None:
    url = remote.url(upstream.path)
    cache_home = tmp_path / "cache-home"
    env = cli_env(tmp_path / "first", GIT_SSH_COMMAND=str(remote.ssh), XDG_CACHE_HOME=str(cache_home))
    remote.stall()
    first = start_cli(tmp_path / "first", "fetch", "--all", "--manifest",
                      str(write_manifest(tmp_path / "fetch.yaml", {"felix": (url, "v1.0")})), env=env)
    try:
        wait_for(remote.stalled, what="a git fetch stalled on the remote")
        dead = run_token_of(remote.stalled()[0])
    finally:
        first.kill()  # SIGKILL to the orchestrator alone, as the OOM killer would
        first.communicate()
    mirror = cache_home / "orchestrator" / "git" / mirror_name(url)
    assert procs.find(procs.RUN_VARIABLE, dead), "the killed run's processes still run: the fault this is about"

    # Another workspace on the same cache, whose manifest does not name that repository.
    other = write_manifest(tmp_path / "other.yaml", {"typha": ("https://example.invalid/typha.git", "v1.0")})
    # --unused-for 0: the killed fetch used the mirror a moment ago.
    clean = start_cli(tmp_path / "second", "clean", "--cache", "--unused-for", "0", "--manifest", str(other),
                      env=env)
    out, err = clean.communicate(timeout=60)

    assert clean.returncode == 0, err
    assert procs.find(procs.RUN_VARIABLE, dead) == [], "the dead run's processes were left running"
    assert "Traceback" not in err
    assert not mirror.exists()
    assert re.search(r"stopped \d+ process\(es\) left by a killed run \(pid \d+", out), out
