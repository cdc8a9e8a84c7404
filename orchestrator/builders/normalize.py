"""Make sdists byte-reproducible: the content is the build's, the metadata is not.

setuptools writes sdist tar entries with the files' mtimes (checkout time for
sources, build time for generated PKG-INFO) and a gzip header stamped with the
current time, so two builds of one commit differ. Like Debian's
strip-nondeterminism, entries are rewritten with times clamped to
SOURCE_DATE_EPOCH, owner 0/0 without names, and a gzip header without time or
name. File contents and order are kept as written.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from orchestrator.fileops import write_atomic


def normalize_tar_gz(path: Path, epoch: int) -> None:
    """Rewrite the ``.tar.gz`` at ``path`` in place (atomically) with normalized metadata."""
    out = io.BytesIO()
    with tarfile.open(path, "r:gz") as source, tarfile.open(fileobj=out, mode="w",
                                                            format=tarfile.PAX_FORMAT) as target:
        for member in source.getmembers():
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.pax_headers = {}
            data = source.extractfile(member) if member.isfile() else None
            target.addfile(member, data)
    write_atomic(path, gzip_timeless(out.getvalue()))


def gzip_timeless(data: bytes) -> bytes:
    """``data`` gzip-compressed with no time and no file name in the header."""
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return compressed.getvalue()
