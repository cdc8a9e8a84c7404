"""A fully cached run that changes which files the release holds must not leave the old
record saying ok beside the new SHA256SUMS, even for an instant.

"A fully cached run invalidates nothing": it writes SHA256SUMS, provenance.json, then
release.json over the old ones. When an artifact leaves the manifest (or is not carried
over any more) and everything else is cached, the new SHA256SUMS no longer lists its
files while the old release.json, still saying ok, does: from the first write to the
last, and for good when the run dies in between (kill -9, a full disk), the record
vouches for files its SHA256SUMS does not list. A run whose SHA256SUMS changes marks the
record "building" first, like any run that changes the release.

The kill is simulated at the rename that publishes release.json (write-order tests).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.record_helpers import Workspace, make_workspace, record_lies
from tests.reliability.test_record_write_order import Killed, build, spy_on_record_writes


@pytest.fixture
def built(tmp_path: Path) -> Workspace:
    workspace = make_workspace(tmp_path, first="mkdir -p out && echo 1 > out/first",
                               second="mkdir -p out && echo 2 > out/second")
    build(workspace, force=False)
    assert record_lies(workspace.release_dir) is None
    return workspace


@pytest.mark.parametrize("kill_at", [("SHA256SUMS", 1), ("provenance.json", 1), ("release.json", 1)],
                         ids=lambda k: f"{k[0]}#{k[1]}")
def test_a_cached_run_dropping_an_artifact_killed_at_any_record_write_leaves_no_record_that_lies(
    built: Workspace, monkeypatch: pytest.MonkeyPatch, kill_at: tuple[str, int]
) -> None:
    text = built.manifest.read_text()
    built.manifest.write_text(text[:text.index("      lib:")])  # the library leaves the release
    spy_on_record_writes(monkeypatch, kill_at)

    with pytest.raises(Killed):
        build(built, force=False)

    assert record_lies(built.release_dir) is None
