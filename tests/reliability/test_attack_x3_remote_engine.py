"""Containers a host command starts on an engine the docker CLI reaches and docker-py
does not are never stopped.

`DOCKER_HOST=ssh://build-host` is how many people reach a remote engine: the docker CLI
runs `ssh build-host docker system dial-stdio`; docker-py needs paramiko for it (not a
dependency here; `use_ssh_client=True` does not avoid it). The shim labels the container,
the step ends, and the orchestrator cannot reach the engine to remove it: one note in the
step's log, the build says ok, the container runs on. A Docker context chosen with
`docker context use` (DOCKER_HOST unset) is the same hole: the CLI follows the context,
docker-py the default socket.

A fake `ssh` first on PATH serves the remote side locally, against the test engine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.interrupt_helpers import make_workspace

pytestmark = pytest.mark.docker

FAKE_SSH = """#!/bin/sh
# ssh [options] HOST COMMAND...: run COMMAND here, against the engine the tests use.
while [ $# -gt 0 ]; do case "$1" in -o|-p|-l|-i|-F) shift 2;; --) shift; break;; -*) shift;; *) break;; esac; done
shift
exec env DOCKER_HOST={docker_host} "$@"
"""


@pytest.mark.xfail(strict=True, reason="attack-x3: the orchestrator cannot reach an ssh:// engine (docker-py needs "
                                       "paramiko) to stop what host commands start there; see the report")
def test_a_container_started_on_an_ssh_engine_is_stopped_when_its_step_ends(
        tmp_path: Path, client: Any, name: str, busybox: str) -> None:
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH.format(docker_host=docker_host))
    (bin_dir / "ssh").chmod(0o755)
    ws = make_workspace(tmp_path, {"daemon": f"docker run -d --network none --name {name} {busybox} sleep 300\n"
                                             "mkdir -p out && echo built > out/daemon"},
                        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "DOCKER_HOST": "ssh://build-host.invalid"})

    code, _, err = ws.run("build", *ws.args("--all"))

    assert code == 0, err
    assert client.containers.list(all=True, filters={"name": name}), "the docker CLI reached the engine"
    assert all(c.status != "running" for c in client.containers.list(all=True, filters={"name": name})), \
        ws.log("daemon")
