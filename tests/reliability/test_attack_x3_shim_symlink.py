""".build/ is not trusted: a symlink planted at .build/shim (or .build/shim/used) is never
followed when each writer run rewrites the docker shim: the run is refused.

Without the fix, `write_shim` followed it: it wrote its `docker` over the file of that
name in the target directory and deleted every file in the target's `used/`, outside
the workspace; and host commands then ran whatever `docker` that directory held first
on their PATH.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.shim import write_shim
from orchestrator.workspace import WorkspaceError


@pytest.mark.parametrize("planted", ["shim", "shim/used"])
def test_a_symlink_planted_in_the_shims_place_is_refused_never_followed(tmp_path: Path, planted: str) -> None:
    victim = tmp_path / "victim"
    (victim / "used").mkdir(parents=True)
    (victim / "used" / "precious").write_text("mine\n")
    (victim / "docker").write_text("#!/bin/sh\necho the user's own docker\n")
    workspace = tmp_path / "ws"
    build = workspace / ".build"
    (build / "shim").mkdir(parents=True)
    link = build / planted
    if link.is_dir():
        link.rmdir()
    link.symlink_to(victim if planted == "shim" else victim / "used")

    # Refused, as every directory of .build/ linked elsewhere is (attack-x1): loud, and
    # the link is left for the user to look at.
    with pytest.raises(WorkspaceError, match=f"{link} is a symbolic link"):
        write_shim(build, workspace)

    assert (victim / "used" / "precious").read_text() == "mine\n", "a file outside the workspace was deleted"
    assert (victim / "docker").read_text() == "#!/bin/sh\necho the user's own docker\n"
    assert link.is_symlink()


def test_a_file_in_the_shims_place_is_replaced(tmp_path: Path) -> None:
    build = tmp_path / "ws" / ".build"
    build.mkdir(parents=True)
    (build / "shim").write_text("not a directory\n")

    write_shim(build, tmp_path / "ws")

    assert (build / "shim" / "docker").is_file()
