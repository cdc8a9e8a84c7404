"""A build command that runs the orchestrator itself: what the inner run starts is stopped
with the outer step that started it.

The inner run gives its own commands a new session and an explicit environment with its
own tokens, so they are neither in the outer step's process group nor carry its tokens.
When the outer run stops the step (Ctrl-C, SIGTERM, a `timeout:`), it SIGKILLs the inner
orchestrator after the same grace the inner one gives its own commands: in two of four
tries the inner run died first, and its commands ran on, found by nothing. Here the inner
orchestrator is killed outright (what losing that race amounts to), deterministically.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers.cli import BIN
from tests.reliability.interrupt_helpers import alive, kill_marked, make_workspace, marker, wait_until, write_manifest

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


def test_what_an_inner_orchestrator_started_is_stopped_with_the_outer_step(tmp_path: Path) -> None:
    word = marker()
    inner_manifest = tmp_path / "inner.yaml"
    write_manifest(inner_manifest, tmp_path / "upstream", {"inner": f"sleep 300; echo {word}"})
    ws = make_workspace(tmp_path, {"outer": f"""
        {BIN / "orchestrator"} build --all -m {inner_manifest} -w {tmp_path / "inner-ws"} -q &
        echo started
        wait
    """})
    try:
        running = ws.start("build", *ws.args("--all"))
        wait_until(lambda: alive(word), "the inner run's command to run")
        for pid in inner_runs(inner_manifest):
            os.kill(pid, signal.SIGKILL)  # the inner run loses the race to the outer one's SIGKILL
        code, _, err = running.finish()

        assert code == 1, err  # the outer step failed: its command was killed
        assert alive(word) == [], "the inner run's command runs on after the outer step that started it"
    finally:
        kill_marked(word)
        for pid in inner_runs(inner_manifest):
            os.kill(pid, signal.SIGKILL)


def inner_runs(manifest: Path) -> list[int]:
    """The orchestrator processes building ``manifest`` (not the shell that started them)."""
    found = []
    for pid in alive(str(manifest)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"orchestrator") or any(arg.endswith(b"/orchestrator") for arg in argv[:2]):
            found.append(pid)
    return found
