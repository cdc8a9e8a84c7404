"""When a mirror of the shared cache was last used, for `clean --cache` to judge it by.

Every workspace and project of a user shares the mirror cache, so a mirror that one
manifest does not name may well be another's. Each use (every resolution of a ref,
cached or not, under the mirror's lock) stamps the mirror: the mtime of the small file
``STAMP`` in it, replaced by a rename so that a reader sees the old stamp or the new one.
No git process, no fsync: a stamp lost to a power cut only makes the mirror look as old
as the use before.

The cache is not trusted. The stamp is never read, only ``lstat``'ed, never followed;
anything but a regular file there counts as no stamp. A mirror with no stamp (written
by a version before this one) is as recent as the newest of its ``FETCH_HEAD`` (every
network fetch writes it) and its directory (changed by each ref or pack git adds at its
top, and by each stamp): it is never judged unused for the stamp's absence alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

STAMP = "orchestrator-last-used"
_TEXT = b"the mtime of this file is when an orchestrator run last used this mirror\n"
DAY = 86400.0
# A stamp this far ahead of the clock is not a clock that drifted a little: say so, and
# keep the mirror, rather than count days from a time that has not come.
_SKEW = DAY


def mark(mirror: Path) -> None:
    """Stamp ``mirror`` as used now. The caller holds the mirror's lock (one writer).

    Whatever a hostile cache put at the stamp's name is replaced, never written through:
    the new stamp is made under an unpredictable name (O_EXCL|O_NOFOLLOW) and renamed
    over it; a directory there is removed first (a rename cannot replace one).
    """
    stamp = mirror / STAMP
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(stamp.lstat().st_mode):
            shutil.rmtree(stamp)
    for leftover in mirror.glob(f".{STAMP}.tmp-*"):  # a stamping run killed before its rename
        with contextlib.suppress(OSError):
            leftover.unlink()
    temp = mirror / f".{STAMP}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, _TEXT)
        finally:
            os.close(fd)
        os.replace(temp, stamp)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def touch(mirror: Path) -> bool:
    """Stamp ``mirror`` as used now without its lock, as the warm path of fetching must (it
    takes no lock): only the mtime of a stamp already there is set, never through a
    symlink. False when there is no stamp of ours to touch (none yet, or anything at its
    name but a file of our stamp's size with one link): the caller then takes the locked
    path, whose ``mark`` replaces it."""
    stamp = mirror / STAMP
    try:
        info = stamp.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size != len(_TEXT):
            return False
        os.utime(stamp, follow_symlinks=False)
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class LastUse:
    """When a mirror was last used, and how that is known."""

    when: float  # unix time
    stamped: bool  # False: no use was ever stamped (an older version's mirror), only git's writes tell

    def age(self, now: float) -> float:
        """Seconds since the last use; 0 for a time up to a day ahead of ``now``."""
        return max(0.0, now - self.when)

    def in_future(self, now: float) -> bool:
        return self.when > now + _SKEW

    def describe(self, now: float) -> str:
        """Why a mirror is kept: ``used 3 days ago``, ``changed 3 days ago, no use recorded``."""
        if self.in_future(now):
            return ("last use stamped" if self.stamped else "last changed") + \
                f" {_days(self.when - now)} in the future (a clock set wrong?)"
        days = _days(self.age(now))
        when = "today" if days == _LESS else f"{days} ago"
        return f"used {when}" if self.stamped else f"changed {when}, no use recorded"

    def unused(self, now: float) -> str:
        """Why a mirror goes: ``unused for 45 days``, ``changed 45 days ago, no use recorded``."""
        days = _days(self.age(now))
        return f"unused for {days}" if self.stamped else f"changed {days} ago, no use recorded"


def last_use(mirror: Path) -> LastUse | None:
    """When ``mirror`` was last used (see the module's docstring); None when it is gone.
    A mirror that is a symlink is judged by the link alone, never looked into."""
    if mirror.is_symlink():
        link = _mtime(mirror, regular=False)
        return LastUse(when=link, stamped=False) if link is not None else None
    stamp = _mtime(mirror / STAMP, regular=True)
    changed = [t for t in (_mtime(mirror / "FETCH_HEAD", regular=True), _mtime(mirror, regular=False))
               if t is not None]
    if stamp is None and not changed:
        return None
    return LastUse(when=max([*changed, *([stamp] if stamp is not None else [])]), stamped=stamp is not None)


def _mtime(path: Path, *, regular: bool) -> float | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    if regular and not stat.S_ISREG(info.st_mode):
        return None
    return info.st_mtime


_LESS = "less than a day"


def _days(seconds: float) -> str:
    days = int(seconds // DAY)
    return _LESS if days == 0 else "1 day" if days == 1 else f"{days} days"
