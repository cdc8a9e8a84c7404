"""`nohup orchestrator build --all &` survives the terminal closing.

nohup sets SIGHUP to be ignored, and a program started under it keeps it ignored
(CPython itself leaves an ignored SIGINT alone). The orchestrator installed its stop
handler over it: the hang-up of the terminal the build was started from stopped the build
the user had put under nohup to survive it (exit 130).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.helpers.cli import BIN
from tests.reliability.interrupt_helpers import make_workspace, wait_until


def _nohup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def test_a_build_started_under_nohup_ignores_the_hang_up(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "echo started; sleep 2; mkdir -p out && echo a > out/a"})
    with (tmp_path / "err").open("wb") as err:
        process = subprocess.Popen([str(BIN / "orchestrator"), "build", *ws.args("--all")], cwd=tmp_path,
                                   env=ws.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                   start_new_session=True, preexec_fn=_nohup)
    wait_until(lambda: "started" in ws.log("a"), "the step to start")

    os.killpg(process.pid, signal.SIGHUP)  # the terminal goes away
    code = process.wait(timeout=60)

    assert code == 0, (tmp_path / "err").read_text()
    assert (ws.path / "dist" / "v1" / "bin" / "a").read_text() == "a\n"
