"""``docker -- run IMAGE`` starts a container (docker CLI 20.10 to 28: ``--`` ends the
global options, the subcommand follows). The shim took it for no command at all and
passed it on unlabelled, so the container a host command started that way was never
found: it ran on after its step, after Ctrl-C, and after the run."""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path

import docker  # type: ignore[import-untyped, unused-ignore]
import pytest

from orchestrator.shim import RUN_LABEL, STEP_LABEL, WORKSPACE_LABEL, add_labels
from tests.reliability.isolation_helpers import Workspace, make_repo

LABELS = {RUN_LABEL: "r", STEP_LABEL: "s", WORKSPACE_LABEL: "/ws"}
ADDED = ["--label=orchestrator.run=r", "--label=orchestrator.step=s", "--label=orchestrator.workspace=/ws"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("-- run img", "-- run {L} img"),
        ("-H tcp://h -- container create img", "-H tcp://h -- container create {L} img"),
        ("-D -- run --rm img", "-D -- run {L} --rm img"),
    ],
)
def test_labels_go_after_the_subcommand_that_follows_the_end_of_docker_options(before: str, after: str) -> None:
    expected = [word for part in shlex.split(after) for word in (ADDED if part == "{L}" else [part])]
    assert add_labels(shlex.split(before), LABELS) == expected


@pytest.mark.docker
def test_a_container_a_host_command_starts_with_docker_dash_dash_run_is_stopped_after_its_step(
    busybox: str, tmp_path: Path
) -> None:
    base = tmp_path
    client = docker.from_env()
    before = {c.id for c in client.containers.list(all=True)}
    ws = Workspace(base / "ws")
    ws.root.mkdir()
    commit = make_repo(base / "repo", {"README": "tool\n"})
    ws.manifest(base / "repo", commit, f"""
tool:
  type: binary
  command: docker -- run -d --network none {busybox} sleep 300 && echo tool > out
  outputs: [out]
""")
    try:
        code, output = ws.run("build", "tool")

        assert code == 0, output
        left = [c for c in client.containers.list(all=True) if c.id not in before]
        assert left == [], f"left running after its step: {[c.name for c in left]}"
    finally:
        for container in client.containers.list(all=True):
            if container.id not in before:
                with contextlib.suppress(Exception):
                    container.remove(force=True)
