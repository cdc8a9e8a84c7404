"""Ctrl-C, SIGTERM and SIGHUP stop a real build cleanly; a second one stops it at once.

The real ``orchestrator`` executable runs in a session of its own and gets its signals
through ``os.killpg``, as a terminal's Ctrl-C reaches a foreground job.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.interrupt_helpers import alive, kill_marked, make_workspace, marker, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
STOPPED = "interrupted: running commands and containers were stopped"


@pytest.fixture
def word() -> Iterator[str]:
    word = marker()
    yield word
    kill_marked(word)


def stubborn(word: str) -> str:
    """A step whose shell dies of SIGTERM while its child ignores it and writes on."""
    return f"""
        (trap '' TERM; while :; do echo {word} >> "$HOME/ticks"; sleep 0.1; done) &
        echo started
        wait
    """


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_each_stop_signal_ends_a_build_with_130_and_leaves_nothing_running(tmp_path: Path, word: str,
                                                                           sig: signal.Signals) -> None:
    ws = make_workspace(tmp_path, {"slow": stubborn(word)})
    running = ws.start("build", *ws.args("--all"))
    wait_until(lambda: "started" in ws.log("slow") and alive(word), "the step to start")

    running.signal(sig)
    code, _, err = running.finish()

    assert code == 130, err
    assert STOPPED in err
    assert "Traceback" not in err
    assert alive(word) == [], "the child that ignored SIGTERM was killed too"
    assert not (ws.path / "dist" / "v1" / "release.json").exists(), "nothing finished: nothing to record"


def test_what_finished_before_ctrl_c_is_recorded_as_an_incomplete_release(tmp_path: Path, word: str) -> None:
    # One repository: its artifacts build one after the other, fast first.
    ws = make_workspace(tmp_path, {"fast": "mkdir -p out && echo fast > out/fast", "slow": stubborn(word)})
    running = ws.start("build", *ws.args("--all"))
    wait_until(lambda: "started" in ws.log("slow") and alive(word), "the slow step to start")

    running.signal(signal.SIGINT)
    code, _, err = running.finish()

    assert code == 130, err
    assert STOPPED in err and "release.json records the 1 built artifact (release status incomplete)" in err
    release = ws.path / "dist" / "v1"
    data = json.loads((release / "release.json").read_text())
    assert data["status"] == "incomplete"
    assert data["artifacts"]["fast"]["status"] == "ok"
    assert data["artifacts"]["slow"]["status"] == "not-started"
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True).returncode == 0
    publish = ws.run("publish", *ws.args("--all"))
    assert publish[0] == 1 and "refusing to publish" in publish[2], publish


def test_a_second_signal_during_the_graceful_stop_kills_everything_at_once(tmp_path: Path, word: str) -> None:
    # The shell ignores SIGTERM (saying so) and waits forever: only SIGKILL ends it. The
    # grace is long, so that the second signal lands inside it however loaded the machine.
    ws = make_workspace(tmp_path, {"slow": f"""
        trap 'echo "got" "term"' TERM
        (trap '' TERM; while :; do sleep 0.1; done; echo {word}) &
        echo started
        while :; do wait; done
    """}, env={"ORCHESTRATOR_STOP_GRACE": "600"})
    running = ws.start("build", *ws.args("--all"))
    wait_until(lambda: "started" in ws.log("slow") and alive(word), "the step to start")

    running.signal(signal.SIGINT)
    # "got term", never in the log's copy of the script: waiting for "got-term" returned at
    # once, and two signals sent back to back were merged into one by the kernel.
    wait_until(lambda: "got term" in ws.log("slow"), "the graceful stop to send SIGTERM")
    running.signal(signal.SIGTERM)
    code, _, err = running.finish()

    assert code == 130, err
    assert "interrupted again: killing every command and container of this run at once" in err
    assert "Traceback" not in err
    assert alive(word) == []


@pytest.mark.parametrize("grace", ["0", "7"])
def test_stop_grace_is_how_long_a_stopped_command_gets_before_sigkill(tmp_path: Path, word: str, grace: str) -> None:
    ws = make_workspace(tmp_path, {"slow": stubborn(word)}, extra={"slow": "timeout: 1"},
                        env={"ORCHESTRATOR_STOP_GRACE": grace})
    code, _, err = ws.run("build", *ws.args("--all"))
    assert code == 1, err
    assert f"timed out: stopping the command (SIGKILL in {grace}s if it lingers)" in ws.log("slow")
    assert alive(word) == []


@pytest.mark.parametrize("task", ["fetch", "demo"])
def test_sigterm_stops_the_other_writing_tasks_with_130_too(tmp_path: Path, task: str) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    args = ("fetch", *ws.args("--all")) if task == "fetch" else ("demo", "--workspace", str(ws.path))
    # A hook that makes the first git command wait: the task is surely running when stopped.
    gate = tmp_path / "gate"
    slow_git = tmp_path / "bin"
    slow_git.mkdir()
    (slow_git / "git").write_text(f'#!/bin/sh\nwhile [ ! -e "{gate}" ]; do sleep 0.05; done\nexec /usr/bin/git "$@"\n')
    (slow_git / "git").chmod(0o755)
    running = ws.start(*args, env={"PATH": f"{slow_git}:{ws.env['PATH']}", "GIT_PYTHON_GIT_EXECUTABLE": str(
        slow_git / "git")})
    wait_until(lambda: alive(f"{slow_git}/git") or alive(str(gate)), "git to be called", timeout=30)
    running.signal(signal.SIGTERM)
    code, _, err = running.finish()
    gate.touch()
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
