"""Pin a manifest's repos to commits by editing its YAML text in place.

Only the ``commit:`` values change: every comment, blank line and key order stays,
which a load/dump round trip through PyYAML would lose. Positions come from the
node marks of ``yaml.compose``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator.document import compose, parse
from orchestrator.errors import InputError, ManifestError, OrchestratorError
from orchestrator.fileops import MAX_INPUT_BYTES, read_limited, replace_file
from orchestrator.gitinput import COMMIT

if TYPE_CHECKING:
    from orchestrator.model import Manifest
    from orchestrator.sources import FetchOptions


def lock_text(text: str, commits: Mapping[str, str], *, source: str = "manifest.yaml") -> str:
    """``text`` with ``repos.<name>.commit`` set to ``commits[name]`` for each name.

    An existing value is replaced where it stands; otherwise a ``commit:`` line is
    inserted right after the repo's ``ref:`` line, at the same indentation. Flow-style
    mappings (``{url: ..., ref: ...}``) are refused rather than rewritten.
    """
    for name, commit in commits.items():
        if not COMMIT.fullmatch(commit):
            raise InputError(f"cannot lock {name} to {commit!r}: not a 40-hex commit id")
    root = _compose(text, source)
    repos = _value(root, "repos", "repos", source)
    edits: list[tuple[int, int, str]] = []
    newline = "\r\n" if "\r\n" in text else "\n"
    for name, commit in commits.items():
        repo = _value(repos, name, f"repos.{name}", source)
        written = commit if isinstance(yaml.safe_load(commit), str) else f'"{commit}"'
        current = _entry(repo, "commit", f"repos.{name}", source)
        if current is not None:
            start, end = current[1].start_mark.index, current[1].end_mark.index
            if start == end and text[start - 1 : start] == ":":
                written = " " + written
            edits.append((start, end, written))
            continue
        ref = _entry(repo, "ref", f"repos.{name}", source)
        if ref is None:
            raise _error(f"repos.{name}", repo, source, "has no ref: to put commit: after")
        line = f"{' ' * ref[0].start_mark.column}commit: {written}{newline}"
        line_end = text.find("\n", ref[1].end_mark.index)
        if line_end == -1:
            edits.append((len(text), len(text), newline + line.rstrip("\r\n")))
        else:
            edits.append((line_end + 1, line_end + 1, line))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    _verify(text, commits, source)
    return text


def lock_file(path: Path, commits: Mapping[str, str]) -> bool:
    """Lock the manifest at ``path`` (see ``lock_text``), replacing it atomically.

    Returns whether the file changed. The new text is written to a temporary file
    next to the file and renamed over it, so an interrupted run leaves either the
    old manifest or the new one, never half of one. A ``path`` that is a symlink
    stays one: the file it points to (through any chain of links) is the one
    replaced, in its own directory.
    """
    try:
        real = Path(os.path.realpath(path, strict=True))
        # Bytes, not read_text(): universal newlines would turn CRLF files into LF ones.
        text = read_limited(real).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})", hint="save it as UTF-8") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read the manifest to lock it: {e.strerror or e}",
                         hint=f"give a regular file of at most {MAX_INPUT_BYTES // (1 << 20)} MiB") from e
    locked = lock_text(text, commits, source=str(path))
    if locked == text:
        return False
    try:
        replace_file(real, locked.encode("utf-8"), mode=stat.S_IMODE(real.stat().st_mode))
    except OSError as e:
        raise _unwritable(real, e) from e
    return True


def _unwritable(path: Path, error: OSError) -> OrchestratorError:
    return OrchestratorError(f"{path}: cannot write the locked manifest: {error.strerror or error}",
                             hint="check free space and permissions of its directory; the manifest is unchanged")


def _compose(text: str, source: str) -> yaml.Node:
    # The loader's own composer: YAML errors and runaway nesting get the same located
    # messages as `invoke manifest`, never a RecursionError.
    root = compose(text, source)
    if root is None:
        raise ManifestError("the manifest is empty", file=source)
    return root


def _value(node: yaml.Node, key: str, path: str, source: str) -> yaml.MappingNode:
    """The block mapping under ``key`` of the block mapping ``node``."""
    if not isinstance(node, yaml.MappingNode):
        raise _error(path.rpartition(".")[0] or "(top)", node, source, "is not a mapping")
    if node.flow_style:
        raise _error(path.rpartition(".")[0] or "(top)", node, source, _FLOW)
    entry = _entry(node, key, path, source)
    if entry is None:
        raise _error(path, node, source, "not found")
    value = entry[1]
    if not isinstance(value, yaml.MappingNode):
        raise _error(path, value, source, "is not a mapping")
    if value.flow_style:
        raise _error(path, value, source, _FLOW)
    return value


_FLOW = "is a flow-style mapping ({...}), which cannot be edited in place"


def _entry(node: yaml.MappingNode, key: str, path: str, source: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key node, value node) pair for ``key``, or None."""
    pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
    found = [pair for pair in pairs if pair[0].value == key]
    if len(found) > 1:
        raise _error(f"{path}.{key}", found[1][0], source, "is given twice")
    return found[0] if found else None


def _error(path: str, node: yaml.Node, source: str, problem: str) -> ManifestError:
    hint = "rewrite it in block style, one key per line" if problem == _FLOW else None
    return ManifestError(
        problem,
        file=source,
        line=node.start_mark.line + 1,
        column=node.start_mark.column + 1,
        path=path,
        hint=hint,
    )


def _verify(text: str, commits: Mapping[str, str], source: str) -> None:
    # A cheap guard against an edit that landed in the wrong place.
    loaded = parse(text, source).root
    for name, commit in commits.items():
        if loaded["repos"][name].get("commit") != commit:
            raise ManifestError(f"could not set repos.{name}.commit", file=source)


@dataclass(frozen=True, slots=True, kw_only=True)
class PinChange:
    """What locking found for one repo: its ref, the pin it had, where the ref is now."""

    repo: str
    ref: str
    pinned: str | None
    now: str

    @property
    def state(self) -> str:
        return "unpinned" if self.pinned is None else "moved" if self.pinned != self.now else "unchanged"


def check_pins(repos: Iterable[Any], commits: Mapping[str, str]) -> list[PinChange]:
    """Each repo's pin against ``commits`` (what its ref resolves to now), in order."""
    return [PinChange(repo=repo.name, ref=repo.ref, pinned=repo.commit, now=commits[repo.name]) for repo in repos]


class StalePinsError(OrchestratorError):
    """``manifest --lock --check``: some repos are not pinned at their ref's commit (exit 1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Locked:
    """What ``lock_manifest`` found and did: one change per repo, in manifest order."""

    path: Path
    changes: tuple[PinChange, ...]
    changed: bool  # the file was rewritten
    checking: bool  # --check: nothing was to be written

    @property
    def stale(self) -> tuple[PinChange, ...]:
        return tuple(change for change in self.changes if change.state != "unchanged")

    def lines(self) -> list[str]:
        """One line per repo: where its ref is now against its pin, and what was done."""
        shown = []
        for change in self.changes:
            if change.state == "unpinned":
                shown.append(f"{change.repo}: {change.ref} -> {change.now} "
                             f"({'unpinned' if self.checking else 'pinned'})")
            elif change.state == "moved":
                shown.append(f"{change.repo}: {change.ref} MOVED {change.pinned} -> {change.now}"
                             + ("" if self.checking else " (pin updated)"))
            else:
                shown.append(f"{change.repo}: {change.ref} = {change.now} (unchanged)")
        return shown

    def verdict(self) -> str:
        """The closing line; raises StalePinsError when checking found a repo to pin."""
        if self.checking:
            if self.stale:
                raise StalePinsError(
                    f"{len(self.stale)} of {len(self.changes)} repos are not pinned at their ref's commit: "
                    + ", ".join(f"{c.repo} ({c.state})" for c in self.stale),
                    hint=f"run `manifest --lock` to write the pins into {self.path}")
            return f"{self.path}: every pin matches its ref"
        return f"{self.path}: {'updated' if self.changed else 'already locked'}"


def lock_manifest(manifest: Manifest, options: FetchOptions, *, write: bool,
                  on_event: Callable[[str, str], None] | None = None) -> Locked:
    """Resolve every repo's ref now (asking the remotes), compare with its pin, and, when
    ``write``, write the commits into the manifest (never without)."""
    from orchestrator import sources

    # Locking asks where each ref points *now*: the old pins are what it replaces.
    unpinned = [replace(repo, commit=None) for repo in manifest.repos.values()]
    commits = sources.resolve(unpinned, options, on_event=on_event)
    changes = check_pins(manifest.repos.values(), commits)
    changed = lock_file(manifest.path, commits) if write else False
    return Locked(path=manifest.path, changes=tuple(changes), changed=changed, checking=not write)
