"""File names a repository (or a builder container) chooses, matched by a glob output:
they are published as they are, listed in SHA256SUMS as ``sha256sum`` reads it, or
refused with one clear message.

- A name with U+2028 (or U+0085, U+2029, \\x1c-\\x1e) is one line for ``sha256sum -c``,
  which splits on ``\\n`` only, but two for Python's ``str.splitlines``: verify read
  the intact release as a malformed SHA256SUMS with a missing file, and publish
  refused it.
- A name that is not UTF-8 (``out/a\\xffb``) failed the artifact with "unexpected
  UnicodeEncodeError" after it had been copied into ``dist/``, where it stayed,
  recorded nowhere.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.reliability.isolation_helpers import Workspace, make_repo


def workspace(tmp_path: Path, name: str) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {f"out/{name}": "tool\n", "README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, """
tool:
  type: binary
  command: "true"
  outputs: [out/*]
""")
    return ws


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_a_name_that_python_but_not_sha256sum_splits_verifies_as_it_was_built(separator: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, f"a{separator}b")
    code, output = ws.run("build", "tool")
    assert code == 0, output
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=ws.release, capture_output=True, check=False)
    assert sums.returncode == 0, sums.stdout + sums.stderr

    code, output = ws.run("verify", "--offline", "--skip", "signature")  # unsigned: nothing else left unchecked

    assert code == 0, output


def test_a_name_that_is_not_utf8_is_refused_before_anything_is_published(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "a\udcffb")  # the byte 0xff, as os.fsdecode gives it

    code, output = ws.run("build", "tool")

    assert code == 1, output
    assert "tool: output 'out/a\\xffb' has a name that is not valid UTF-8" in output
    assert "unexpected" not in output
    assert not (ws.release / "bin").exists() or list((ws.release / "bin").iterdir()) == []


@pytest.mark.docker
def test_a_skipped_entry_whose_name_is_not_utf8_is_logged_not_a_failure(busybox: str, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, f"""
tool:
  type: binary
  builder: {busybox}
  command: mkfifo "p$(printf '\\377')" && echo tool > out
  outputs: [out]
""")

    code, output = ws.run("build", "tool")

    assert code == 0, output
    log = (ws.root / ".build" / "logs" / "v1" / "tool.log").read_text()
    assert "not copied back from the container: src/p\\udcff: a FIFO" in log
