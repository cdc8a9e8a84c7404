"""An interrupted `clean` leaves a half-removed tree that the next `clean` removes.

clean renames a tree to ``.tmp~<name>~removing`` beside it, then deletes it, so a stop
halfway never leaves a half-deleted release at a path a later run reads. But nothing
looked for that name again: after Ctrl-C during `clean --all`, `ws/.tmp~dist~removing`
(every release's files, half deleted) stayed for good, and the next `clean` said
"nothing to remove". A real `orchestrator clean`, interrupted with SIGINT mid-removal.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.reliability.interrupt_helpers import make_workspace


@pytest.mark.parametrize("whole", [True, False], ids=["all", "release"])
def test_the_clean_after_an_interrupted_clean_removes_what_it_left(tmp_path: Path, whole: bool) -> None:
    ws = make_workspace(tmp_path, {"a": "true"})
    big = ws.path / "dist" / "v1" / "bin"
    for folder in range(50):  # enough files that the removal takes a moment
        (big / f"d{folder}").mkdir(parents=True)
        for name in range(100):
            (big / f"d{folder}" / f"f{name}").touch()
    doomed = ws.path / (".tmp~dist~removing" if whole else "dist/.tmp~v1~removing")
    args = ("clean", "--all", *ws.args()) if whole else ("clean", *ws.args())

    first = ws.start(*args)
    deadline = time.monotonic() + 60
    while not doomed.exists() and first.process.poll() is None and time.monotonic() < deadline:
        pass  # no sleep: the removal takes a fraction of a second
    if first.process.poll() is None:
        first.signal(signal.SIGSTOP)  # frozen mid-removal, then interrupted there
        first.signal(signal.SIGINT)
        os.killpg(first.process.pid, signal.SIGCONT)
    code, _, err = first.finish()
    if code == 0:
        pytest.skip("the removal finished before the interrupt arrived")
    assert code == 130, err
    assert doomed.exists(), "the interrupted removal left its half-removed tree"

    code, out, err = ws.run(*args)

    assert code == 0, err
    assert not doomed.exists(), out
    assert "Traceback" not in err
