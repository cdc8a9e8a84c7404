"""Make sdists byte-reproducible: the content is the build's, the metadata is not.

setuptools writes sdist tar entries with the files' mtimes (checkout time for
sources, build time for generated PKG-INFO) and a gzip header stamped with the
current time, so two builds of one commit differ. Like Debian's
strip-nondeterminism, entries are rewritten with times clamped to
SOURCE_DATE_EPOCH, owner 0/0 without names, and a gzip header without time or
name. File contents and order are kept as written.

The sdist was written by the build (a builder container, or the repository's own
setup.py), so it is streamed: tar to gzip to a spool file on disk, never the whole
expanded archive in memory, whatever it expands to.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from orchestrator.confined import UnsafePath, opened_file, write_file
from orchestrator.errors import BuildError

_BLOCK = 1 << 20


def normalize_tar_gz(root: Path, relative: PurePosixPath, epoch: int, *, artifact: str) -> None:
    """Rewrite the ``.tar.gz`` at ``root/relative`` in place (atomically) with normalized metadata."""
    with tempfile.TemporaryFile(dir=root) as spool:
        try:
            with opened_file(root, relative) as (fd, _), open(fd, "rb", closefd=False) as raw:
                _rewrite(raw, spool, epoch)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnsafePath) as e:
            raise BuildError(f"{artifact}: cannot normalize {relative}: it is not a readable .tar.gz ({e})",
                             hint="the build command must write an sdist there") from e
        spool.seek(0)
        write_file(root, relative, _chunks(spool), mode=0o644)


def _rewrite(raw: IO[bytes], into: IO[bytes], epoch: int) -> None:
    with tarfile.open(fileobj=raw, mode="r:gz") as source, _timeless_gzip(into) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member in source:
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.pax_headers = {}
            data = source.extractfile(member) if member.isfile() else None
            target.addfile(member, data)


def gzip_timeless(data: bytes) -> bytes:
    """``data`` gzip-compressed with no time and no file name in the header."""
    compressed = io.BytesIO()
    with _timeless_gzip(compressed) as gz:
        gz.write(data)
    return compressed.getvalue()


def _timeless_gzip(into: IO[bytes]) -> gzip.GzipFile:
    return gzip.GzipFile(filename="", mode="wb", fileobj=into, mtime=0, compresslevel=9)


def _chunks(data: IO[bytes]) -> Iterator[bytes]:
    while block := data.read(_BLOCK):
        yield block
