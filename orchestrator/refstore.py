"""Reading a ref the way git stores it, without starting git: a loose file under
``refs/``, else a line of ``packed-refs`` (a loose ref wins, as in git).

Only plain answers are given: a ref that is a symbolic ref, a file that is a symlink,
a FIFO or too big, a line git would not write all read as "don't know" (None), and the
caller asks git instead. The ref names are the manifest's, already checked by
``orchestrator.gitinput``.
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.fileops import read_limited

_OID = re.compile(rb"[0-9a-f]{40}")
MAX_PACKED_BYTES = 16 * 1024 * 1024


class Unknown(Exception):
    """The ref store holds something git would have to interpret: ask git."""


def read(git_dir: Path, refname: str) -> str | None:
    """The object id ``refname`` holds in ``git_dir``, None when it does not exist there.

    Raises ``Unknown`` when only git could tell (a symbolic ref, an odd file, a
    ``packed-refs`` too big or malformed, a reftable repository)."""
    if (git_dir / "reftable").exists():
        raise Unknown(f"{git_dir} keeps its refs in a reftable")
    loose = _small_file(git_dir / refname, 4096)
    if loose is not None:
        value = loose.rstrip(b"\n")
        if not _OID.fullmatch(value):
            raise Unknown(f"{refname} in {git_dir} is not a plain object id")
        return value.decode()
    packed = _small_file(git_dir / "packed-refs", MAX_PACKED_BYTES)
    if packed is None:
        return None
    wanted = refname.encode()
    for line in packed.splitlines():
        if not line or line.startswith((b"#", b"^")):
            continue
        oid, space, name = line.partition(b" ")
        if not space or not _OID.fullmatch(oid):
            raise Unknown(f"packed-refs of {git_dir} has a line git does not write")
        if name == wanted:
            return oid.decode()
    return None


def _small_file(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of at most ``limit`` bytes; None when there is none."""
    try:
        return read_limited(path, limit=limit, follow=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:  # a symlink (ELOOP), a directory, a FIFO, too big, no permission
        raise Unknown(f"{path}: {error.strerror}") from error
