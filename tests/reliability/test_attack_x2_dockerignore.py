"""The build context's ``.dockerignore`` is repository content: never followed out of
the checkout, never read unbounded.

docker-py opens ``<context>/.dockerignore`` with a plain ``open()`` and reads all of it
before it sends anything. A committed ``.dockerignore -> /dev/zero`` made the
orchestrator read until the machine ran out of memory (MemoryError under a 1.5 GB
limit, 3 s in); one pointing at a FIFO on the host hung the build past its
``timeout:`` until Ctrl-C; one pointing at any host file read it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.reliability.isolation_helpers import Link, Workspace, make_repo

pytestmark = pytest.mark.docker
IMAGE = "orchestrator-test.invalid/x2/dockerignore:v1"


def build(tmp_path: Path, ignore: str | Link) -> tuple[int, str, Workspace]:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    files: dict[str, str | Link] = {"Dockerfile": "FROM scratch\nCOPY README /README\n", "README": "x\n"}
    files[".dockerignore" if isinstance(ignore, Link) else ".dockerignore/inside"] = ignore
    commit = make_repo(tmp_path / "repo", files)
    ws.manifest(tmp_path / "repo", commit, f"""
img:
  type: image
  tags: ["{IMAGE}"]
  timeout: 20s
""")
    # A bounded wait: before the fix, a FIFO made the build hang until killed.
    result = run_cli("build", "img", "--manifest", str(ws.root / "manifest.yaml"), "--workspace", str(ws.root),
                     program="orchestrator", cwd=ws.root, env={"XDG_CACHE_HOME": str(ws.root / "cache")}, timeout=90)
    return result.returncode, result.stdout + result.stderr, ws


def test_a_dockerignore_symlinked_to_a_fifo_outside_the_checkout_is_refused_not_read(
    busybox: str, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    code, output, ws = build(tmp_path, Link(str(fifo)))

    assert code == 1, output
    assert f"img: .dockerignore: resolves to {fifo}, outside the checkout {ws.checkout}" in output


def test_a_dockerignore_that_is_a_directory_is_one_clear_error(busybox: str, tmp_path: Path) -> None:
    code, output, _ = build(tmp_path, "x\n")

    assert code == 1, output
    assert "img: .dockerignore in the build context is not a regular file" in output
    assert "unexpected" not in output
