"""One workspace, one writer: the workspace lock, between real ``invoke`` processes.

Two builds in one workspace used to end with release.json "ok" over files another build
had just replaced; a fetch during a build ran ``git clean`` under it. Now a second writer
is refused at once, naming the first, or waits with ``--wait``; readers never wait; and a
writer killed with kill -9 leaves neither a lock nor running work behind it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.interrupt_helpers import Workspace, alive, kill_marked, make_workspace, marker, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


def gated(ws_root: Path, name: str) -> str:
    """A step that logs its run's start and end around a wait for the file ``go``, and
    writes output unique to the run."""
    events, go = ws_root / "events", ws_root / "go"
    return f"""
        echo "start $ORCHESTRATOR_RUN_TOKEN" >> {events}
        echo started
        while [ ! -e {go} ]; do sleep 0.05; done
        mkdir -p out && echo "$ORCHESTRATOR_RUN_TOKEN" > out/{name}
        echo "end $ORCHESTRATOR_RUN_TOKEN" >> {events}
    """


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, {"a": gated(tmp_path, "a"), "b": gated(tmp_path, "b")})
    yield workspace
    (tmp_path / "go").touch()  # never leave a gated build waiting


def holding(ws: Workspace) -> tuple[Workspace, int]:
    """Start a build that holds the workspace until ``go`` exists; its pid."""
    first = ws.start("build", *ws.args("--all"), program="invoke", name="first")
    wait_until(lambda: "started" in ws.log("a"), "the first build to run its step")
    return ws, first.process.pid


def sums_match(release: Path) -> bool:
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True, text=True)
    return check.returncode == 0


def test_a_second_build_in_the_same_workspace_is_refused_at_once_naming_the_first(ws: Workspace) -> None:
    first = ws.start("build", *ws.args("--all"), program="invoke", name="first")
    wait_until(lambda: "started" in ws.log("a"), "the first build to run its step")

    # Without a lock, this build would wait on the same gate: a safety bound ends the test.
    code, _, err = ws.start("build", *ws.args("--all"), program="invoke", name="second").finish(timeout=60)

    assert code == 1, err
    assert f"is in use by pid {first.process.pid} (invoke build --all" in err
    assert "since 20" in err and "--wait" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2, err
    (ws.root / "go").touch()
    assert first.finish()[0] == 0


def test_with_wait_the_second_build_runs_after_the_first_and_the_record_matches_the_files(ws: Workspace) -> None:
    first = ws.start("build", *ws.args("--all"), program="invoke", name="first")
    wait_until(lambda: "started" in ws.log("a"), "the first build to run its step")
    second = ws.start("build", *ws.args("--all", "--force", "--wait"), program="invoke", name="second")
    wait_until(lambda: "waiting for workspace" in second.err.read_text(), "the second build to wait")
    assert f"in use by pid {first.process.pid}" in second.err.read_text()

    (ws.root / "go").touch()
    assert first.finish()[0] == 0
    code, _, err = second.finish()

    assert code == 0, err
    events = [line.split() for line in (ws.root / "events").read_text().splitlines()]
    runs = list(dict.fromkeys(token for _, token in events))
    assert len(runs) == 2
    # Every step of the first run ended before any step of the second began.
    first_ends = max(i for i, (what, token) in enumerate(events) if token == runs[0])
    second_starts = min(i for i, (what, token) in enumerate(events) if token == runs[1])
    assert first_ends < second_starts, events
    release = ws.path / "dist" / "v1"
    record = json.loads((release / "release.json").read_text())
    assert record["status"] == "ok"
    assert sums_match(release)
    assert (release / "bin" / "a").read_text().strip() == runs[1]


def test_a_fetch_while_a_build_uses_the_checkout_is_refused(ws: Workspace) -> None:
    _, pid = holding(ws)
    code, _, err = ws.run("fetch", *ws.args("--all"))
    assert code == 1, err
    assert f"in use by pid {pid}" in err


def test_readers_never_wait_for_a_writer(ws: Workspace) -> None:
    (ws.root / "go").touch()
    assert ws.run("build", *ws.args("--all"))[0] == 0
    (ws.root / "go").unlink()
    writer = ws.start("build", *ws.args("--all", "--force"), name="writer")
    wait_until(lambda: len((ws.root / "events").read_text().splitlines()) > 4, "the rebuild to start")

    # Bounded only for safety: a reader that took the lock would wait for the gate.
    for args in (("verify", "--offline", *ws.args()), ("build", "--dry-run", *ws.args("--all")),
                 ("manifest", "--manifest", str(ws.manifest))):
        code, out, err = ws.start(*args).finish(timeout=60)
        assert "in use" not in err and "waiting for workspace" not in err, (args, err)
        assert "Traceback" not in err, (args, err)
        if args[0] != "verify":  # verify may fairly say the release is being rebuilt
            assert code == 0, (args, err)
    assert writer.process.poll() is None, "the writer still holds the workspace"


def test_a_lock_left_by_a_killed_run_is_taken_over_and_what_it_left_running_is_stopped(tmp_path: Path) -> None:
    word = marker()
    orphan = f"(trap '' TERM; while :; do sleep 0.1; done; echo {word}) & echo started; wait"
    ws = make_workspace(tmp_path, {"a": orphan})
    try:
        killed = ws.start("build", *ws.args("--all"), program="invoke", name="killed")
        wait_until(lambda: alive(word), "the step's child to run")
        os.kill(killed.process.pid, signal.SIGKILL)  # the orchestrator alone, as the OOM killer would
        killed.process.wait()
        assert alive(word), "its host command's child runs on after kill -9"

        ws.rewrite({"a": "mkdir -p out && echo a > out/a"})
        code, _, err = ws.run("build", *ws.args("--all"), program="invoke")

        assert code == 0, err
        assert f"a run that died holding this workspace (pid {killed.process.pid} (invoke build --all" in err
        assert word in err, "it says which process it stopped"
        assert alive(word) == []
        assert sums_match(ws.path / "dist" / "v1")
    finally:
        kill_marked(word)


def test_a_clean_exit_leaves_no_owner_record_and_the_next_run_reports_nothing(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    assert ws.run("build", *ws.args("--all"))[0] == 0
    assert not (ws.path / ".build" / "workspace.owner").exists()
    code, _, err = ws.run("build", *ws.args("--all"))
    assert code == 0 and "died" not in err


def test_a_workspace_that_is_a_file_is_one_line_naming_it(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    for task in (("build", "--all"), ("fetch", "--all"), ("publish", "--all")):
        code, _, err = ws.run(task[0], task[1], "--manifest", str(ws.manifest), "--workspace", str(not_a_dir))
        assert code == 1, (task, err)
        assert f"workspace {not_a_dir} is not a directory" in err
        assert "Traceback" not in err
    code, _, err = ws.run("demo", "--workspace", str(not_a_dir))
    assert code == 1 and f"workspace {not_a_dir} is not a directory" in err


def test_a_workspace_whose_build_directory_cannot_be_made_is_one_line_naming_it(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    (ws.path / ".build").write_text("not a directory\n")
    code, _, err = ws.run("build", *ws.args("--all"))
    assert code == 1, err
    assert f"cannot use workspace {ws.path}: {ws.path / '.build'}: File exists" in err
    assert "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_an_unwritable_workspace_is_one_line_naming_it(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    ws.path.chmod(0o555)
    try:
        code, _, err = ws.run("build", *ws.args("--all"))
    finally:
        ws.path.chmod(0o755)
    assert code == 1, err
    assert "Permission denied" in err and str(ws.path) in err and "Traceback" not in err


def test_ctrl_c_while_waiting_for_the_workspace_exits_130_and_runs_nothing(ws: Workspace) -> None:
    _, pid = holding(ws)
    waiter = ws.start("build", *ws.args("--all", "--force", "--wait"), name="waiter")
    wait_until(lambda: "waiting for workspace" in waiter.err.read_text(), "the second build to wait")

    waiter.signal(signal.SIGINT)
    code, _, err = waiter.finish()

    assert code == 130, err
    assert "Traceback" not in err
    assert len((ws.root / "events").read_text().splitlines()) == 1, "only the holder's step ever started"


def test_two_workspaces_sharing_one_mirror_cache_fetch_at_once(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    other = tmp_path / "ws2"
    other.mkdir()
    runs = [ws.start("fetch", "--all", "--manifest", str(ws.manifest), "--workspace", str(path), name=path.name)
            for path in (ws.path, other)]
    for run in runs:
        code, _, err = run.finish()
        assert code == 0, err
    for path in (ws.path, other):
        assert (path / ".build" / "src" / "app" / "README").exists()


def test_a_forged_owner_record_names_nothing_to_stop(tmp_path: Path) -> None:
    word = marker()
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    # A process whose environment has an empty run token, and a record claiming that token.
    bystander = subprocess.Popen(["sh", "-c", f"sleep 60; echo {word}"], env={"ORCHESTRATOR_RUN_TOKEN": "",
                                                                             "PATH": "/usr/bin:/bin"})
    try:
        (ws.path / ".build").mkdir()
        (ws.path / ".build" / "workspace.owner").write_text(json.dumps(
            {"pid": 999999, "started": 1, "token": "", "command": "forged", "since": 0}))
        code, _, err = ws.run("build", *ws.args("--all"))
        assert code == 0, err
        assert bystander.poll() is None, "a process the record named by an empty token still runs"
        assert "died" not in err
    finally:
        bystander.kill()
        bystander.wait()


def test_orchestrator_wait_in_the_environment_waits_like_the_flag(ws: Workspace) -> None:
    _, pid = holding(ws)
    waiter = ws.start("fetch", *ws.args("--all"), env={"ORCHESTRATOR_WAIT": "1"}, name="waiter")
    wait_until(lambda: f"in use by pid {pid}" in waiter.err.read_text(), "the fetch to wait")
    assert "waiting for workspace" in waiter.err.read_text()
    (ws.root / "go").touch()
    code, _, err = waiter.finish()
    assert code == 0, err


def test_publish_by_release_dir_locks_the_workspace_that_owns_it(ws: Workspace, tmp_path: Path) -> None:
    # A build holds ws; a publish run from elsewhere names ws's release directory: it must
    # meet ws's lock (the release it would push is being rebuilt), not take its own.
    ws, pid = holding(ws)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, _, err = ws.start("publish", "--all", "--release-dir", str(ws.path / "dist" / "v1"),
                            "--manifest", str(ws.manifest), "--workspace", str(elsewhere),
                            name="publish").finish(timeout=60)

    assert code == 1, err
    assert f"in use by pid {pid}" in err
    assert not (elsewhere / ".build").exists()
