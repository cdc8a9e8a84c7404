"""Do the bytes in dist/<release>/ match the record? Files against SHA256SUMS and
release.json, and nothing else in the directory.

Everything on disk is untrusted: a symlink is reported, never followed; a hidden
file is a file like any other; SHA256SUMS is read as ``sha256sum -c`` would, so a
line it would fail on (a second line for one path with another hash) fails here too.
Used by ``verify`` (to report) and ``publish`` (to refuse); ``damage`` (one file
against its record) by the cache and the release writer too.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator import record
from orchestrator.confined import UnsafePath, opened_file
from orchestrator.fileops import TEMP_NAME, InputFileError, read_limited, sha256_file
from orchestrator.outputs import FileRecord
from orchestrator.record import Release

RECORD_FILES = frozenset({record.FILENAME, record.SUMS, record.PROVENANCE, record.ENVELOPE})
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")
# A published file is rw-r--r-- or rwxr-xr-x at most: never setuid/setgid/sticky,
# never writable by anyone but its owner.
_FORBIDDEN = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TYPES = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFDIR: "a directory"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One thing checked: ``ok`` is True (matches), False (does not) or None (not checked)."""

    what: str
    ok: bool | None
    detail: str
    area: str = ""  # which kind of check (verify's areas: files, images, signature, registry...)


def printable(text: str) -> str:
    """``text`` with control characters escaped: names found on disk reach a terminal."""
    return text.encode("unicode_escape").decode("ascii") if _CONTROL.search(text) else text


def mode_problem(mode: int) -> str | None:
    """Why permission bits ``mode`` are not acceptable for a published file, or None."""
    bad = [name for bit, name in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid"), (stat.S_ISVTX, "sticky"),
                                  (stat.S_IWGRP, "group-writable"), (stat.S_IWOTH, "world-writable"))
           if mode & bit]
    return f"mode {mode:04o} is {' and '.join(bad)}" if bad else None


def read_sums(path: Path) -> tuple[dict[str, str], list[str]]:
    """SHA256SUMS as {path: sha256}, and every line that is malformed or names a path twice."""
    sums: dict[str, str] = {}
    first_line: dict[str, int] = {}
    bad: list[str] = []
    text = read_limited(path).decode("utf-8", errors="replace")
    # Lines end at "\n" only, as sha256sum reads them: splitlines() would also end one at a
    # form feed, NEL or U+2028, and pass a file whose lines sha256sum -c reads as one.
    for number, line in enumerate(text.removesuffix("\n").split("\n"), 1):
        match = _SUM_LINE.fullmatch(line)
        if match is None:
            if line.strip():
                bad.append(f"line {number}: malformed {line[:80]!r}")
            continue
        digest, name = match.groups()
        if not record.safe_relative(name):
            bad.append(f"line {number}: {name[:80]!r} is not a path inside the release directory")
        elif name in sums:
            # sha256sum -c checks both lines: one of them fails unless they agree, and even then
            # a second line is not something this orchestrator ever writes.
            bad.append(f"line {number}: {name} listed again (first on line {first_line[name]})")
        else:
            sums[name] = digest
            first_line[name] = number
    return sums, bad


def recorded_files(release: Release) -> tuple[dict[str, FileRecord], list[Check]]:
    """Every file of a built artifact, by path; a path recorded by two artifacts is a failure."""
    found: dict[str, FileRecord] = {}
    owner: dict[str, str] = {}
    problems: list[Check] = []
    for name, artifact in release.built().items():
        for file in artifact.files:
            if file.path in found:
                problems.append(Check(what=f"file {file.path}", ok=False,
                                      detail=f"recorded twice in release.json ({owner[file.path]} and {name})"))
                continue
            found[file.path], owner[file.path] = file, name
    return found, problems


def file_checks(release_dir: Path, release: Release) -> Iterator[Check]:
    """Every recorded or listed file against the bytes on disk, then everything else on disk."""
    recorded, problems = recorded_files(release)
    yield from problems
    sums_path = release_dir / record.SUMS
    sums: dict[str, str] = {}
    try:
        sums, bad = read_sums(sums_path)
        if bad:
            yield Check(what=record.SUMS, ok=False, detail="; ".join(bad))
    except FileNotFoundError:
        yield Check(what=record.SUMS, ok=False, detail="missing; nothing can be checked against it")
    except (InputFileError, OSError) as e:
        yield Check(what=record.SUMS, ok=False, detail=f"cannot be read: {e.strerror}")
    for name in dict.fromkeys([*sums, *recorded]):
        yield _file_check(release_dir, name, recorded.get(name), sums.get(name))
    yield from _unexpected(release_dir, set(recorded) | set(sums))


def _file_check(release_dir: Path, name: str, file: FileRecord | None, listed: str | None) -> Check:
    problems: list[str] = []
    if file is None:
        problems.append("listed in SHA256SUMS but not in release.json")
    if listed is None:
        problems.append("in release.json but not listed in SHA256SUMS")
    elif file is not None and file.sha256 != listed:
        problems.append(f"release.json says sha256 {file.sha256}, SHA256SUMS says {listed}")
    expected = listed or (file.sha256 if file else "")
    on_disk = _on_disk(release_dir, name, file, expected, "SHA256SUMS" if listed else "release.json")
    if on_disk == "missing" and listed is not None:
        on_disk = "missing (listed in SHA256SUMS)"
    if on_disk:
        problems.insert(0, on_disk)
    if file is not None and (bad_mode := mode_problem(file.mode)):
        problems.append(f"release.json records {bad_mode}")
    if problems:
        return Check(what=f"file {name}", ok=False, detail="; ".join(problems))
    return Check(what=f"file {name}", ok=True, detail=f"sha256 {expected}")


def _on_disk(release_dir: Path, name: str, file: FileRecord | None, expected: str, source: str) -> str | None:
    """What is wrong with the file itself (not following a symlink), or None."""
    path = release_dir / name
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    if stat.S_ISLNK(info.st_mode):
        return f"a symbolic link (-> {printable(os.readlink(path))}), not a file"
    if not stat.S_ISREG(info.st_mode):
        return f"{_TYPES.get(stat.S_IFMT(info.st_mode), 'not a regular file')}, not a file"
    problems = []
    mode = stat.S_IMODE(info.st_mode)
    if bad_mode := mode_problem(mode):
        problems.append(bad_mode)
    elif file is not None and mode != file.mode:
        problems.append(f"mode {mode:04o}, release.json records {file.mode:04o}")
    try:
        actual = sha256_file(path)
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    if actual != expected:
        problems.append(f"changed: sha256 {actual}, {source} says {expected}")
    elif file is not None and info.st_size != file.size:
        problems.append(f"size {info.st_size}, release.json records {file.size}")
    return "; ".join(problems) or None


def _unexpected(release_dir: Path, known: set[str]) -> Iterator[Check]:
    """Everything in the release directory that no record lists: files (hidden ones
    too), symlinks, FIFOs, devices; the record files only as regular files at the top."""
    errors: list[OSError] = []
    for top, dirs, files in os.walk(release_dir, onerror=errors.append):
        base = Path(top)
        for entry in sorted([*dirs, *files]):
            path = base / entry
            name = path.relative_to(release_dir).as_posix()
            what = f"file {printable(name)}"
            try:
                info = path.lstat()
            except OSError:
                continue
            kind = stat.S_IFMT(info.st_mode)
            if kind == stat.S_IFDIR:
                continue
            if kind == stat.S_IFLNK:
                if name not in known:  # a recorded one is reported by its own check
                    target = printable(os.readlink(path))
                    yield Check(what=what, ok=False,
                                detail=f"a symbolic link (-> {target}); a release holds only files")
            elif kind != stat.S_IFREG:
                if name not in known:
                    yield Check(what=what, ok=False,
                                detail=f"{_TYPES.get(kind, 'not a regular file')}; a release holds only files")
            elif name in known or (top == str(release_dir) and entry in RECORD_FILES):
                continue
            elif match := TEMP_NAME.fullmatch(entry):
                yield Check(what=what, ok=False,
                            detail=f"a leftover temporary file of an interrupted write of {printable(match['name'])} "
                                   f"(pid {match['pid']}); delete it")
            else:
                yield Check(what=what, ok=False, detail="in the release directory but in no record")
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    for error in errors:
        if Path(error.filename or "") != release_dir:
            yield Check(what=f"directory {printable(str(error.filename))}", ok=False,
                        detail=f"cannot be listed: {error.strerror}")


def damage(release_dir: Path, record: FileRecord) -> str | None:
    """Why the published file of ``record`` does not match it, or None when it does.

    The file must be a regular file reached without a symlink on the way (a symlink is
    never followed, the file's or a folder's above it: it could point anywhere on the
    host), with the recorded size, permission bits and sha256, all read from one open file.
    """
    try:
        with opened_file(release_dir, record.path) as (fd, info):
            if stat.S_IMODE(info.st_mode) != record.mode:
                return f"mode {stat.S_IMODE(info.st_mode):04o}, recorded {record.mode:04o}"
            if info.st_size != record.size:
                return f"size {info.st_size}, recorded {record.size}"
            digest = hashlib.sha256()
            while block := os.read(fd, 1 << 20):
                digest.update(block)
    except FileNotFoundError:
        return "missing"
    except UnsafePath as e:
        return "a symbolic link, not a file" if e.relative == record.path and "symlink" in e.why else \
            f"{e.relative} {e.why}"
    except ValueError:  # not a plain relative path: the record reader refuses those already
        return "not a path inside the release directory"
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    if digest.hexdigest() != record.sha256:
        return f"sha256 {digest.hexdigest()}, recorded {record.sha256}"
    return None
