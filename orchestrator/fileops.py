"""Files on disk, written so that a reader never sees half of one: the one home of
atomic writes and copies, hashing, and the check that published files are intact.

Every writer of the orchestrator goes through here, so there is one durability
policy: write to a temporary name in the same directory, then rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

from orchestrator.outputs import FileRecord


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_damaged(release_dir: Path, files: Iterable[FileRecord]) -> str | None:
    """The path of the first recorded file that is missing or changed, or None."""
    for record in files:
        published = release_dir / record.path
        if not published.is_file() or sha256_file(published) != record.sha256:
            return record.path
    return None


def _temp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}"


def copy_atomic(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` through a temp name in the same directory, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(dest)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
