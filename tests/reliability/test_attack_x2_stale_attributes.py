"""A checkout is exactly its commit, whatever a builder container left in it.

During ``git checkout``, git reads attributes from the index and, where a directory has
no ``.gitattributes`` in the index, from the work tree. A builder container that left
an untracked ``sub/.gitattributes`` (``* text eol=crlf ident``) and deleted ``sub/a.txt``
therefore made the *next* run's ``git checkout --force`` write ``sub/a.txt`` converted
(CRLF, ``$Id: <blob> $``); the ``git clean`` after it then removed the
``.gitattributes``, and the build used bytes that are not the pinned commit's while its
record named that commit. ``working-tree-encoding`` rewrites a file wholesale the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.isolation_helpers import Workspace, make_repo

COMMITTED = "line\n$Id$\n"


@pytest.mark.docker
@pytest.mark.parametrize("attributes", ["* text eol=crlf ident", "* working-tree-encoding=UTF-16"])
def test_attributes_a_container_left_never_convert_the_next_checkout(
    attributes: str, busybox: str, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"sub/a.txt": COMMITTED, "README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, f"""
poison:
  type: binary
  builder: {busybox}
  command: echo '{attributes}' > sub/.gitattributes && rm sub/a.txt && echo x > out
  outputs: [out]
copy:
  type: binary
  command: "true"
  outputs: [sub/a.txt]
""")
    code, output = ws.run("build", "poison")
    assert code == 0, output
    assert (ws.checkout / "sub" / ".gitattributes").exists()

    code, output = ws.run("build", "copy")

    assert code == 0, output
    assert (ws.checkout / "sub" / "a.txt").read_text() == COMMITTED
    assert (ws.release / "bin" / "a.txt").read_text() == COMMITTED, "published bytes that are not the commit's"
