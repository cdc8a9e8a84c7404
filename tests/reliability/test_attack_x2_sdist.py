"""Normalizing a python-package's sdist reads a file the build wrote (a builder
container, or the repository's own setup.py): it must cost memory bounded by a block,
whatever the archive expands to, and a file that is no .tar.gz is one clear error.

Before: the whole normalized tar was built in memory, then compressed in memory, so a
2.6 MB .tar.gz of 600 MB of zeros needed well over 1 GB (MemoryError under a 500 MB
limit; a 30 MB one asks a machine for 30 GB); a file named .tar.gz that is not one
failed as "unexpected ReadError".
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.helpers.cli import BIN
from tests.reliability.isolation_helpers import Workspace, make_repo

SDIST = "mkdir -p dist && truncate -s 600000000 x-1 && tar cf - x-1 | gzip -1 > dist/x-1.tar.gz && rm x-1"


def workspace(tmp_path: Path, command: str) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, f"""
tool:
  type: python-package
  command: {command}
  outputs: [dist/*.tar.gz]
""")
    return ws


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux's prlimit")
def test_an_sdist_that_expands_to_600_mb_is_normalized_within_500_mb_of_memory(tmp_path: Path) -> None:
    ws = workspace(tmp_path, SDIST)

    result = subprocess.run(
        ["prlimit", f"--as={500 << 20}", str(BIN / "orchestrator"), "build", "tool",
         "--manifest", str(ws.root / "manifest.yaml"), "--workspace", str(ws.root)],
        cwd=ws.root, env={**os.environ, "XDG_CACHE_HOME": str(ws.root / "cache")}, capture_output=True, text=True,
        timeout=600, check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    with tarfile.open(ws.release / "python" / "x-1.tar.gz") as archive:
        member = archive.getmember("x-1")
        assert (member.size, member.mtime, member.uid) == (600_000_000, 1_600_000_000, 0)
    with gzip.open(ws.release / "python" / "x-1.tar.gz") as raw:
        assert raw.read(3) == b"x-1"


def test_a_file_named_tar_gz_that_is_not_one_is_one_clear_error(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "mkdir -p dist && echo not-a-tar > dist/x-1.tar.gz")

    code, output = ws.run("build", "tool")

    assert code == 1, output
    assert "tool: cannot normalize dist/x-1.tar.gz: it is not a readable .tar.gz" in output
    assert "unexpected" not in output


def old_normalize(data: bytes, epoch: int) -> bytes:
    """The in-memory algorithm this replaced, as it was."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as source, tarfile.open(
        fileobj=out, mode="w", format=tarfile.PAX_FORMAT
    ) as target:
        for member in source.getmembers():
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.pax_headers = {}
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(out.getvalue())
    return compressed.getvalue()


def test_normalizing_gives_the_same_bytes_as_before(tmp_path: Path) -> None:
    original = io.BytesIO()
    with tarfile.open(fileobj=original, mode="w:gz") as archive:
        for name, size in (("x-1/", 0), ("x-1/PKG-INFO", 3000), ("x-1/big", 3 << 20)):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            info.size, info.mtime, info.uid, info.uname = size, 1_700_000_000, 1000, "me"
            archive.addfile(info, io.BytesIO(os.urandom(size // 2) + bytes(size - size // 2)) if size else None)
    (tmp_path / "sdist.tar.gz").write_bytes(original.getvalue())
    ws = workspace(tmp_path, f"mkdir -p dist && cp {tmp_path / 'sdist.tar.gz'} dist/x-1.tar.gz")

    code, output = ws.run("build", "tool")

    assert code == 0, output
    assert (ws.release / "python" / "x-1.tar.gz").read_bytes() == old_normalize(original.getvalue(), 1_600_000_000)
