"""Published files judged by their stat data first, the way git's index judges a work tree.

A cache lookup must know that each recorded output is still intact. Reading and hashing
every file on every run costs as much as the files weigh, so after a lookup has hashed
them it keeps their stat data (size, permission bits, mtime_ns, ctime_ns, inode,
device) beside the state record, signed with the user's stamp key
(``orchestrator.stamps``). The next lookup trusts a file whose stat data are unchanged
and that was not racily clean (changed at or after the moment they were taken);
anything else is hashed again. A rewrite changes ctime, which only root can set back,
so a file changed behind our back with its size and mtime restored is still hashed.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator import stamps
from orchestrator.confined import UnsafePath, opened_file
from orchestrator.outputs import FileRecord

Signature = tuple[int, ...]


def sidecar(record_path: Path) -> Path:
    return record_path.with_suffix(".stat")


def _bound(record_path: Path, key: str, files: Sequence[FileRecord]) -> dict[str, str]:
    listed = ";".join(f"{f.path}\0{f.sha256}\0{f.size}\0{f.mode}" for f in files)
    return {"state": str(record_path.absolute()), "key": key, "files": listed}


def current(release_dir: Path, record: FileRecord) -> Signature | None:
    """The stat data of the published file, reached without following a symlink; None
    when there is no such regular file."""
    try:
        with opened_file(release_dir, record.path) as (_, info):
            return (info.st_size, stat.S_IMODE(info.st_mode), info.st_mtime_ns, info.st_ctime_ns, info.st_ino,
                    info.st_dev)
    except (OSError, UnsafePath, ValueError):
        return None


def trusted(record_path: Path, secret: bytes | None, key: str, files: Sequence[FileRecord]) -> dict[str, Signature]:
    """The signatures a lookup may trust (racily clean ones left out); empty when there
    is no sidecar of ours for exactly this record."""
    fields = stamps.read(sidecar(record_path), secret, _bound(record_path, key, files))
    if fields is None or not isinstance(fields.get("taken"), int) or not isinstance(fields.get("files"), dict):
        return {}
    taken: int = fields["taken"]
    found: dict[str, Signature] = {}
    for path, value in fields["files"].items():
        if isinstance(value, list) and len(value) == 6 and all(isinstance(v, int) for v in value) \
                and max(value[2], value[3]) < taken:
            found[path] = tuple(value)
    return found


def now(record_path: Path) -> int | None:
    """The file system's clock beside the state record: take it *before* the stat data
    that ``keep`` is given, so that a file changed in that same tick counts as racy."""
    stamps.sweep(record_path.parent)  # what killed runs left there
    try:
        return stamps.fs_now(record_path.parent)
    except OSError:
        return None


def keep(record_path: Path, secret: bytes | None, key: str, files: Sequence[FileRecord],
         signatures: Mapping[str, Signature], taken: int | None) -> None:
    """Sign and keep the stat data of files just hashed, read after ``taken`` (``now``);
    silently nothing when it cannot be written (they are hashed again next time)."""
    if secret is None or taken is None:
        return
    try:
        fields = {"format": stamps.FORMAT, "taken": taken, "files": {p: list(s) for p, s in signatures.items()}}
        stamps.write(sidecar(record_path), secret, fields, _bound(record_path, key, files))
    except OSError:
        forget(record_path)


def forget(record_path: Path) -> None:
    stamps.forget(sidecar(record_path))

