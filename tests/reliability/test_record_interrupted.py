"""An interrupted or killed ``build --force`` never leaves a record that says ok over
changed files: the record stops saying ok before the first output is replaced.

Real ``orchestrator build`` processes, real git, signals sent to the build's process
group (as a terminal's Ctrl-C does) or SIGKILL to it, at several points.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.reliability.record_helpers import Workspace, cleanup, make_workspace, record_lies


@pytest.fixture
def built(tmp_path: Path) -> Workspace:
    """A workspace whose release r1 was built once, completely: release.json says ok."""
    workspace = make_workspace(tmp_path)
    first = workspace.run("build", "--all")
    assert first.returncode == 0, first.stderr
    assert json.loads((workspace.release_dir / "release.json").read_text())["status"] == "ok"
    assert record_lies(workspace.release_dir) is None
    workspace.release()
    return workspace


def status(workspace: Workspace) -> str | None:
    path = workspace.release_dir / "release.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
@pytest.mark.parametrize("step", ["first", "second"])
def test_a_forced_rebuild_stopped_mid_way_leaves_no_record_that_says_ok_over_changed_files(
    built: Workspace, step: str, sig: signal.Signals
) -> None:
    old_first = (built.release_dir / "bin/first").read_bytes()
    built.block(step)
    process = built.start("build", "--all", "--force")
    with cleanup(built, process):
        built.wait_ready(step, process)
        if step == "second":  # first was rebuilt and republished before second started
            assert (built.release_dir / "bin/first").read_bytes() != old_first
        os.killpg(process.pid, sig)
        _, err = process.communicate(timeout=60)

    assert process.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    assert record_lies(built.release_dir) is None
    if sig == signal.SIGINT and step == "second":
        # A Ctrl-C lets the run record what it had: first rebuilt, second's earlier build
        # (untouched) carried over, and the release incomplete: never ok after a stop.
        assert status(built) == "incomplete"
        data = json.loads((built.release_dir / "release.json").read_text())
        assert data["artifacts"]["first"]["status"] == "ok"
        assert data["artifacts"]["second"].get("carried_over") is True
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=built.release_dir, capture_output=True)
        assert check.returncode == 0
        return
    assert status(built) == "building", "the record of the earlier, complete run no longer vouches for the files"
    assert not (built.release_dir / "SHA256SUMS").exists()
    assert not (built.release_dir / "provenance.json").exists()


def test_after_an_interrupted_rebuild_the_next_build_makes_the_record_whole_again(built: Workspace) -> None:
    built.block("second")
    process = built.start("build", "--all", "--force")
    with cleanup(built, process):
        built.wait_ready("second", process)
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)

    again = built.run("build", "--all")

    assert again.returncode == 0, again.stderr
    assert status(built) == "ok" and record_lies(built.release_dir) is None
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=built.release_dir, capture_output=True, text=True)
    assert check.returncode == 0 and "bin/first: OK" in check.stdout and "bin/second: OK" in check.stdout


def test_a_fully_cached_run_invalidates_nothing(built: Workspace) -> None:
    before = {name: (built.release_dir / name).stat().st_mtime_ns for name in ("bin/first", "bin/second")}
    built.block("first")  # a rebuild would block: the run must not reach a recipe

    result = built.run("build", "--all", timeout=60)

    assert result.returncode == 0, result.stderr
    assert not (built.control / "first.ready").exists(), "nothing was rebuilt"
    assert status(built) == "ok" and record_lies(built.release_dir) is None
    assert {name: (built.release_dir / name).stat().st_mtime_ns for name in before} == before


def test_temp_files_left_by_a_killed_run_are_removed_by_the_next_build_and_verify_passes(built: Workspace) -> None:
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    leftover = built.release_dir / "bin" / f".first.tmp-{dead}-0badc0de"
    leftover.write_text("half a file\n")
    assert "a leftover temporary file" in built.run("verify", "--offline").stdout

    again = built.run("build", "--all")

    assert again.returncode == 0, again.stderr
    assert not leftover.exists()
    verified = built.run("verify", "--offline", "--skip", "signature")  # unsigned: nothing else left unchecked
    assert verified.returncode == 0, verified.stdout


def test_a_partial_build_keeps_the_rest_of_the_release_carried_over(built: Workspace) -> None:
    result = built.run("build", "first", "--force=first")

    assert result.returncode == 0, result.stderr
    data = json.loads((built.release_dir / "release.json").read_text())
    assert data["status"] == "ok" and list(data["artifacts"]) == ["first", "second", "lib"]
    assert [name for name, a in data["artifacts"].items() if a.get("carried_over")] == ["second", "lib"]
    assert record_lies(built.release_dir) is None


def test_nothing_is_carried_over_from_a_record_of_another_manifest(built: Workspace) -> None:
    text = built.manifest.read_text()
    built.manifest.write_text(text.replace("out/second && echo", "out/second && : changed recipe && echo", 1))

    result = built.run("build", "first")

    assert result.returncode == 0, result.stderr
    data = json.loads((built.release_dir / "release.json").read_text())
    assert list(data["artifacts"]) == ["first"], "second was built from the old recipe: not vouched for"
    verified = built.run("verify", "--offline")
    assert "bin/second: in the release directory but in no record" in verified.stdout
