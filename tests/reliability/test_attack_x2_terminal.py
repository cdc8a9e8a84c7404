"""What a build prints never drives the terminal it is shown on.

A build's output is the repository's (or a builder container's) text, and the
orchestrator shows it: streamed with ``--verbose``, and as the tail of a failed step's
log in the summary, on every failure. Only CSI sequences were stripped, and only from
container output: an OSC 52 sequence (``ESC ] 52 ; c ; <base64> BEL``) reached the
user's terminal as it was, and terminals that honour it put the build's text on the
clipboard (pasted into a shell later, it runs); a DCS query (``ESC P $ q``) makes some
terminals answer into their own input. The log file held them raw too, for ``cat``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.isolation_helpers import Workspace, make_repo

# printf in sh: OSC 52 (clipboard), a DCS query, a colour (CSI), a bare carriage return.
PRINT = r"printf 'a\033]52;c;aGFja2Vk\007b\033P$q m\033\\c\033[31mred\033[0m\rspoof\n'"


def workspace(tmp_path: Path, builder: str | None) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, f"""
tool:
  type: binary
  {f"builder: {builder}" if builder else ""}
  command: "{PRINT.replace(chr(92), chr(92) * 2)}; exit 3"
  outputs: [out]
""")
    return ws


def shown_safely(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text, repr(text)
    assert "\\x1b]52;c;aGFja2Vk\\x07b\\x1bP$q m\\x1b\\c" in text, "the sequences are shown, escaped"


@pytest.mark.parametrize("where", ["host", pytest.param("container", marks=pytest.mark.docker)])
@pytest.mark.parametrize("verbose", [False, True])
def test_a_failed_builds_output_reaches_the_terminal_and_the_log_without_control_sequences(
    where: str, verbose: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    builder = request.getfixturevalue("busybox") if where == "container" else None
    ws = workspace(tmp_path, builder)

    code, output = ws.run("build", "tool", *(["--verbose"] if verbose else []))

    assert code == 1, output
    shown_safely(output)
    shown_safely((ws.root / ".build" / "logs" / "v1" / "tool.log").read_text())
