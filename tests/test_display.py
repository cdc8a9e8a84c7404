from __future__ import annotations

import io

from orchestrator.execute import Event
from orchestrator_cli.display import Progress


def test_plain_progress_prints_one_line_per_state_change_and_skips_queued() -> None:
    out = io.StringIO()
    progress = Progress(out, live=False)
    for state in ("queued", "running", "ok"):
        progress(Event(artifact="felix", state=state))
    progress(Event(artifact="node", state="skipped", detail="skipped: dependency felix failed"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[running] felix"
    assert lines[1].startswith("[ok] felix (")
    assert lines[2] == "[skipped] node: skipped: dependency felix failed"


def test_live_progress_renders_a_table_of_every_artifact_state() -> None:
    out = io.StringIO()
    progress = Progress(out, live=True)
    with progress.showing():
        progress(Event(artifact="felix", state="queued"))
        progress(Event(artifact="calico/node", state="queued"))
        progress(Event(artifact="felix", state="failed"))
    text = out.getvalue()
    assert "felix" in text and "failed" in text and "calico/node" in text and "queued" in text
