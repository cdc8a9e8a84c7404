"""Helpers for the isolation tests: hostile tars, repositories whose commits hold
symlinks, one-repo manifests, and the orchestrator CLI on them. (The real engine and
its busybox are plugin fixtures: tests/conftest.py.)
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.gitrepos import git

__all__ = ["Entry", "Link", "Workspace", "chunks_of", "make_repo", "tar_of"]


# -- tars as an engine would send them -------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One tar entry: ``kind`` is file, dir, symlink, hardlink, fifo, chardev."""

    name: str
    kind: str = "file"
    data: bytes = b""
    target: str = ""  # symlink or hard link target
    mode: int = 0o644


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
}


def tar_of(*entries: Entry) -> bytes:
    """A tar holding exactly ``entries``, in order, whatever they say (names are not checked)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.mode, info.mtime = _TYPES[entry.kind], entry.mode, 1_600_000_000
            info.linkname = entry.target
            if entry.kind == "chardev":
                info.devmajor, info.devminor = 1, 3
            info.size = len(entry.data) if entry.kind == "file" else 0
            archive.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    return buffer.getvalue()


def chunks_of(data: bytes, size: int = 700) -> Iterator[bytes]:
    """``data`` in small pieces, the way a stream arrives."""
    return (data[i : i + size] for i in range(0, len(data), size))


# -- repositories and workspaces -----------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A symlink to commit: ``Link("/etc/hostname")``."""

    target: str


def make_repo(path: Path, files: Mapping[str, str | Link], *, executable: tuple[str, ...] = ()) -> str:
    """A repository at ``path`` whose one commit (tagged v1) holds ``files``; returns its id."""
    path.mkdir(parents=True)
    for name, content in files.items():
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(content.target, file)
        else:
            file.write_text(content)
            file.chmod(0o755 if name in executable else 0o644)
    git("init", "--quiet", "--initial-branch=main", cwd=path)
    git("add", "--all", cwd=path)
    git("commit", "--quiet", "--message", "fixture", cwd=path, when=1_600_000_000)
    git("tag", "v1", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


@dataclass(frozen=True)
class Workspace:
    """A workspace with one repo ``tool`` and a manifest whose artifacts are given as YAML."""

    root: Path

    @property
    def checkout(self) -> Path:
        return self.root / ".build" / "src" / "tool"

    @property
    def release(self) -> Path:
        return self.root / "dist" / "v1"

    def manifest(self, repo: Path, commit: str, artifacts: str) -> Path:
        path = self.root / "manifest.yaml"
        body = "\n".join("      " + line for line in artifacts.strip("\n").splitlines())
        path.write_text(
            "schema: 1\nrelease: v1\ndefaults: {network: none}\nrepos:\n  tool:\n"
            f"    url: {repo.as_uri()}\n    ref: v1\n    commit: {commit}\n    artifacts:\n{body}\n"
        )
        return path

    def run(self, task: str, *args: str) -> tuple[int, str]:
        """``orchestrator TASK ARGS`` in this workspace; (exit code, stdout and stderr)."""
        result = run_cli(task, *args, "--manifest", str(self.root / "manifest.yaml"), "--workspace", str(self.root),
                         program="orchestrator", cwd=self.root,
                         env={"XDG_CACHE_HOME": str(self.root / "cache")}, timeout=300)
        return result.returncode, result.stdout + result.stderr
