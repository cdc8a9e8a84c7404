"""A build writes only inside its workspace, whatever symlinks were planted under
``dist/`` and ``.build/`` (both untrusted: a restored CI cache, a shared workspace).

``dist/<release>`` linked elsewhere made the build publish its outputs and its record
there, overwriting that directory's SHA256SUMS and release.json; a log file linked to a
user's file (``.build/logs/<release>/<artifact>.log -> ~/.bashrc``) was truncated and
overwritten with the step's log; ``.build/state/<release>`` linked elsewhere made the
build delete and replace ``<artifact>.json`` files there. Each must be refused or
replaced as a link, never followed.

Real git, the real CLI.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.record_helpers import Workspace, assert_one_clean_message, make_workspace, record_lies


@pytest.fixture
def built(tmp_path: Path) -> Workspace:
    workspace = make_workspace(tmp_path, first="mkdir -p out && echo 1 > out/first",
                               second="mkdir -p out && echo 2 > out/second")
    result = workspace.run("build", "--all")
    assert result.returncode == 0, result.stderr
    return workspace


def outside(tmp_path: Path, *names: str) -> Path:
    """A directory outside the workspace holding a precious file under each of ``names``."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    for name in names:
        (directory / name).write_text("precious\n")
    return directory


def untouched(directory: Path, *names: str) -> None:
    assert sorted(p.name for p in directory.iterdir()) == sorted(names), "nothing was added"
    for name in names:
        assert (directory / name).read_text() == "precious\n", f"{directory / name} was overwritten"


def test_a_release_directory_linked_outside_the_workspace_is_refused_and_nothing_is_written_there(
    built: Workspace, tmp_path: Path
) -> None:
    target = outside(tmp_path, "SHA256SUMS", "provenance.json")
    os.rename(built.release_dir, tmp_path / "old-release")
    built.release_dir.symlink_to(target)

    result = built.run("build", "--all")

    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_clean_message(result, str(built.release_dir), "symbolic link")
    untouched(target, "SHA256SUMS", "provenance.json")


def test_a_log_file_linked_to_a_users_file_is_replaced_not_written_through(built: Workspace, tmp_path: Path) -> None:
    target = outside(tmp_path, "bashrc")
    log = built.root / ".build" / "logs" / "r1" / "first.log"
    log.unlink()
    log.symlink_to(target / "bashrc")

    result = built.run("build", "--all", "--force")

    assert result.returncode == 0, result.stderr
    untouched(target, "bashrc")
    assert not log.is_symlink() and "building: --force" in log.read_text()
    assert record_lies(built.release_dir) is None


@pytest.mark.parametrize("linked", [".build/logs/r1", ".build/state/r1"])
def test_a_log_or_state_directory_linked_outside_the_workspace_is_refused(
    built: Workspace, tmp_path: Path, linked: str
) -> None:
    target = outside(tmp_path, "first.log", "first.json")
    path = built.root / linked
    os.rename(path, tmp_path / "old")
    path.symlink_to(target)

    result = built.run("build", "--all", "--force")

    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_clean_message(result, str(path), "symbolic link")
    untouched(target, "first.log", "first.json")
    assert record_lies(built.release_dir) is None


def test_a_log_file_hard_linked_to_a_users_file_leaves_that_file_alone(built: Workspace, tmp_path: Path) -> None:
    target = outside(tmp_path, "bashrc")
    log = built.root / ".build" / "logs" / "r1" / "first.log"
    log.unlink()
    os.link(target / "bashrc", log)

    result = built.run("build", "--all", "--force")

    assert result.returncode == 0, result.stderr
    untouched(target, "bashrc")


def test_the_shims_marker_directory_linked_to_a_users_directory_is_refused_and_emptied_of_nothing(
    built: Workspace, tmp_path: Path
) -> None:
    target = outside(tmp_path, "thesis.tex")
    used = built.root / ".build" / "shim" / "used"
    used.rmdir()
    used.symlink_to(target)

    result = built.run("build", "--all")

    assert result.returncode == 1, result.stdout + result.stderr
    assert_one_clean_message(result, str(used), "symbolic link")
    untouched(target, "thesis.tex")


def test_the_workspace_owner_record_is_never_written_through_a_link_at_its_temporary_name(tmp_path: Path) -> None:
    from orchestrator import workspace

    target = outside(tmp_path, "authorized_keys")
    build = tmp_path / "ws" / ".build"
    build.mkdir(parents=True)
    (build / f".workspace.owner.{os.getpid()}").symlink_to(target / "authorized_keys")

    with workspace.hold(tmp_path / "ws"):
        pass

    untouched(target, "authorized_keys")


@pytest.mark.parametrize("linked", ["demo", "demo/repos"])
def test_the_demos_directories_linked_to_a_users_directory_are_refused_and_nothing_there_is_replaced(
    tmp_path: Path, linked: str
) -> None:
    from orchestrator.sandbox import create_demo
    from orchestrator.workspace import WorkspaceError

    target = outside(tmp_path, "felix")  # a user's own "felix", where the demo would put its repository
    build = tmp_path / "ws" / ".build"
    (build / linked).parent.mkdir(parents=True, exist_ok=True)
    (build / linked).symlink_to(target)

    with pytest.raises(WorkspaceError, match="symbolic link"):
        create_demo(build / "demo")

    untouched(target, "felix")


def test_outputs_reached_through_a_linked_folder_of_the_release_are_not_vouched_for_as_cached(
    built: Workspace, tmp_path: Path
) -> None:
    import json
    import shutil

    elsewhere = tmp_path / "elsewhere-bin"
    shutil.move(built.release_dir / "bin", elsewhere)  # same bytes, now outside the release
    (built.release_dir / "bin").symlink_to(elsewhere)

    result = built.run("build", "--all")

    data = json.loads((built.release_dir / "release.json").read_text())
    assert "Traceback" not in result.stderr, result.stderr
    assert data["status"] != "ok" or not (built.release_dir / "bin").is_symlink(), (
        "release.json says ok over files reached through a link out of the release:\n" + result.stdout)
