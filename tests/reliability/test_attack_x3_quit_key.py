"""Ctrl-\\ (SIGQUIT, the terminal's quit key) kills everything the run started at once.

Every command the orchestrator starts runs in a session of its own, so a terminal's
signals reach the orchestrator alone: it must pass each one on. SIGQUIT was left to its
default action: the orchestrator died on the spot (core, signal 3) and every host command,
container and git process it had started ran on until some later run in the workspace.
The user pressed the key that means "quit now": it now does what a second Ctrl-C does.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.interrupt_helpers import alive, kill_marked, make_workspace, marker, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


@pytest.fixture
def word() -> Iterator[str]:
    word = marker()
    yield word
    kill_marked(word)


def test_ctrl_backslash_kills_every_command_of_the_run_at_once(tmp_path: Path, word: str) -> None:
    ws = make_workspace(tmp_path, {"slow": f"""
        (trap '' TERM; while :; do sleep 0.1; done; echo {word}) &
        echo started
        wait
    """})
    running = ws.start("build", *ws.args("--all"))
    wait_until(lambda: "started" in ws.log("slow") and alive(word), "the step to start")

    running.signal(signal.SIGQUIT)  # the terminal's Ctrl-\ reaches the foreground job
    code, _, err = running.finish(timeout=30)

    assert code == 130, err
    assert alive(word) == [], "the command runs on after the orchestrator quit"
    assert "Traceback" not in err
