"""The checkout's .git is the host's: no path the orchestrator writes or reads for a
build may lead into it, even through a symlink that stays inside the checkout.

A repository that commits ``vendor -> .git`` turned staging into a write into the
host's .git: a builder container's output named ``config`` (a glob output, so the
container picks the name) was staged into ``vendor/`` and replaced ``.git/config``; the
library's ``git archive`` in the same run then ran the smudge filter it defined, on the
host, and archived the filter's bytes as "the pinned commit".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.isolation_helpers import Link, Workspace, make_repo


@pytest.mark.docker
def test_staging_through_a_committed_symlink_to_git_never_writes_the_hosts_git_dir(
    busybox: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-on-the-host"
    planted = ("[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
               f'[filter "evil"]\n\tsmudge = "touch {marker}; cat"\n')
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {
        "build.sh": "mkdir -p out && cp planted out/config\n", "planted": planted, "README": "tool\n",
        "vendor": Link(".git"), ".gitattributes": "README filter=evil\n",
    })
    ws.manifest(tmp_path / "repo", commit, f"""
gen:
  type: binary
  builder: {busybox}
  command: sh build.sh
  outputs: [out/*]
use:
  type: binary
  command: "true"
  outputs: [README]
  stage: {{vendor/: gen}}
lib:
  type: library
  requires: [use]
""")
    code, output = ws.run("fetch", "tool")
    assert code == 0, output
    config = (ws.checkout / ".git" / "config").read_bytes()

    code, output = ws.run("build", "lib")

    assert code == 1, output
    assert ("use: cannot stage config at 'vendor/config': vendor: resolves to .git, "
            "inside a .git directory (host git trusts it)") in output
    assert (ws.checkout / ".git" / "config").read_bytes() == config
    assert not marker.exists(), "a program planted by a builder container ran on the host"


def test_an_output_that_is_a_symlink_into_git_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"leak": Link(".git/config"), "README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, """
tool:
  type: binary
  command: "true"
  outputs: [leak]
""")

    code, output = ws.run("build", "tool")

    assert code == 1, output
    assert "tool: output 'leak' resolves to .git/config, inside a .git directory (host git trusts it)" in output
    assert not (ws.release / "bin" / "leak").exists()
