"""The docker shim's directory lives in .build/, which is not trusted: clearing its
``used/`` markers removes what is in .build/shim/used, never what a symlink there
points at.

Before: with ``.build/shim/used -> ~/Documents``, every build deleted every file in
~/Documents ("markers of runs that ended or died").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.shim import write_shim
from orchestrator.workspace import WorkspaceError


def test_a_symlink_planted_as_the_shims_marker_directory_is_refused_not_emptied(tmp_path: Path) -> None:
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.tex").write_text("years of work\n")
    build = tmp_path / "ws" / ".build"
    (build / "shim").mkdir(parents=True)
    (build / "shim" / "used").symlink_to(documents)

    with pytest.raises(WorkspaceError, match="shim/used is a symbolic link"):
        write_shim(build, tmp_path / "ws")

    assert (documents / "thesis.tex").read_text() == "years of work\n"
