"""The docker shim labels the containers host commands start, and changes nothing else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator import procs
from orchestrator.shim import RUN_LABEL, STEP_LABEL, WORKSPACE_LABEL, add_labels, find_docker, write_shim

LABELS = {RUN_LABEL: "r", STEP_LABEL: "s", WORKSPACE_LABEL: "/ws"}
ADDED = ["--label=orchestrator.run=r", "--label=orchestrator.step=s", "--label=orchestrator.workspace=/ws"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("run img", "run {L} img"),
        ("create img", "create {L} img"),
        ("container run --rm img", "container run {L} --rm img"),
        ("container create img", "container create {L} img"),
        ("-H tcp://h:2375 run img", "-H tcp://h:2375 run {L} img"),
        ("-Htcp://h:2375 run img", "-Htcp://h:2375 run {L} img"),
        ("-H=tcp://h:2375 run img", "-H=tcp://h:2375 run {L} img"),
        ("--host tcp://h run img", "--host tcp://h run {L} img"),
        ("--host=tcp://h run img", "--host=tcp://h run {L} img"),
        ("--context run run img", "--context run run {L} img"),  # a context named "run"
        ("-c create run img", "-c create run {L} img"),
        ("--config /cfg -l debug run img", "--config /cfg -l debug run {L} img"),
        ("-D -l run run img", "-D -l run run {L} img"),
        ("-Dl run run img", "-Dl run run {L} img"),
        ("--tls --tlsverify --tlscacert ca --tlscert c --tlskey k run img",
         "--tls --tlsverify --tlscacert ca --tlscert c --tlskey k run {L} img"),
        ("--tlsverify=false run img", "--tlsverify=false run {L} img"),
        # Everything after the subcommand is the user's: a word "run" there changes nothing.
        ("run -e X=run img sh -c 'docker run x'", "run {L} -e X=run img sh -c 'docker run x'"),
    ],
)
def test_labels_go_right_after_the_subcommand_that_creates_a_container(before: str, after: str) -> None:
    import shlex

    expected = [word for part in shlex.split(after) for word in (ADDED if part == "{L}" else [part])]
    assert add_labels(shlex.split(before), LABELS) == expected


@pytest.mark.parametrize(
    "argv",
    ["ps -a", "build -t x .", "container ls", "--host run", "-H run", "images", "", "--", "-- ps", "exec c run",
     "--config run ps", "-l run ps", "container --help"],
)
def test_commands_that_create_no_container_pass_unchanged(argv: str) -> None:
    words = argv.split()
    assert add_labels(words, LABELS) == words


def test_the_shim_finds_the_real_docker_after_itself_on_path(tmp_path: Path) -> None:
    shim = write_shim(tmp_path / ".build", tmp_path)
    real = tmp_path / "bin"
    real.mkdir()
    (real / "docker").write_text("#!/bin/sh\n")
    (real / "docker").chmod(0o755)
    path = shim.path_for(f"{tmp_path / 'nothing'}:{real}")
    assert find_docker(path, shim.directory) == str(real / "docker")
    assert find_docker(str(shim.directory), shim.directory) is None


def fake_docker(directory: Path) -> None:
    """A ``docker`` that prints its arguments, one a line."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "docker").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (directory / "docker").chmod(0o755)


def test_the_shim_adds_the_step_labels_marks_the_step_and_passes_everything_else(tmp_path: Path) -> None:
    shim = write_shim(tmp_path / ".build", tmp_path)
    fake_docker(tmp_path / "real")
    env = {"PATH": shim.path_for(f"{tmp_path / 'real'}:/usr/bin:/bin"), procs.RUN_VARIABLE: "run1",
           procs.STEP_VARIABLE: "step1"}
    ran = subprocess.run(["docker", "-H", "unix:///x", "run", "--rm", "img", "a b"], env=env, capture_output=True,
                         text=True, check=True)
    assert ran.stdout.splitlines() == ["-H", "unix:///x", "run", "--label=orchestrator.run=run1",
                                       "--label=orchestrator.step=step1",
                                       f"--label=orchestrator.workspace={tmp_path.resolve()}", "--rm", "img", "a b"]
    assert shim.used("step1") and not shim.used("step2")
    other = subprocess.run(["docker", "ps"], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.splitlines() == ["ps"]


def test_outside_a_build_step_the_shim_adds_nothing(tmp_path: Path) -> None:
    shim = write_shim(tmp_path / ".build", tmp_path)
    fake_docker(tmp_path / "real")
    env = {"PATH": shim.path_for(str(tmp_path / "real"))}
    ran = subprocess.run(["docker", "run", "img"], env=env, capture_output=True, text=True, check=True)
    assert ran.stdout.splitlines() == ["run", "img"]


def test_without_a_real_docker_the_shim_fails_like_a_missing_command(tmp_path: Path) -> None:
    shim = write_shim(tmp_path / ".build", tmp_path)
    env = {"PATH": shim.path_for(str(tmp_path / "empty")), procs.RUN_VARIABLE: "r", procs.STEP_VARIABLE: "s"}
    ran = subprocess.run(["/bin/sh", "-c", "docker run img"], env=env, capture_output=True, text=True)
    assert ran.returncode == 127
    assert "docker: command not found" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_repository_cannot_stand_in_for_the_shims_python_module(tmp_path: Path) -> None:
    shim = write_shim(tmp_path / ".build", tmp_path)
    fake_docker(tmp_path / "real")
    hostile = tmp_path / "checkout"
    (hostile / "orchestrator_cli").mkdir(parents=True)
    (hostile / "orchestrator_cli" / "__init__.py").write_text("")
    (hostile / "orchestrator_cli" / "docker_shim.py").write_text("print('hijacked')\n")
    env = {"PATH": shim.path_for(str(tmp_path / "real")), "PYTHONPATH": str(hostile)}
    ran = subprocess.run(["docker", "ps"], cwd=hostile, env=env, capture_output=True, text=True, check=True)
    assert ran.stdout.splitlines() == ["ps"]


def test_the_shim_is_an_executable_only_its_owner_can_change(tmp_path: Path) -> None:
    shim = write_shim(tmp_path / ".build", tmp_path)
    mode = os.stat(shim.directory / "docker").st_mode & 0o777
    assert mode == 0o755
