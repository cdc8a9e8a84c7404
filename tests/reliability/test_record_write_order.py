"""The order of the record's writes keeps the invariant at every instant: a run that
rebuilds anything first rewrites release.json as "building", then removes SHA256SUMS
and provenance.json; at the end it writes SHA256SUMS, provenance.json, release.json.

A kill is simulated where it cannot be caught by a real signal: the rename that would
publish one record file raises an exception no code of ours catches, so nothing after
it runs, exactly as if the process had died there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.manifest import load
from orchestrator.plan import make_plan
from orchestrator.release import build_release
from orchestrator.settings import Settings
from orchestrator.signing import Signer
from tests.reliability.record_helpers import Workspace, make_workspace, record_lies

RECORD_FILES = ("release.json", "SHA256SUMS", "provenance.json", "provenance.intoto.jsonl")
UNSIGNED_FILES = RECORD_FILES[:3]  # what an unsigned build writes


class Killed(BaseException):
    """Not an Exception: nothing in the orchestrator handles it, as nothing handles SIGKILL."""


def build(workspace: Workspace, *, force: bool, signer: Signer | None = None) -> None:
    manifest = load(workspace.manifest)
    settings = Settings(manifest=workspace.manifest, workspace=workspace.root, cache_dir=workspace.root / "cache",
                        jobs=1)
    build_release(manifest, make_plan(manifest, everything=True), settings, force=force, signer=signer)


@pytest.fixture
def built(tmp_path: Path) -> Workspace:
    workspace = make_workspace(tmp_path, first="mkdir -p out && date +%s%N > out/first",
                               second="mkdir -p out && date +%s%N > out/second")
    build(workspace, force=False)
    assert record_lies(workspace.release_dir) is None
    return workspace


def spy_on_record_writes(monkeypatch: pytest.MonkeyPatch, kill_at: tuple[str, int] | None = None) -> list[str]:
    """Every rename onto and removal of a record file, in order; ``kill_at`` (name, nth)
    raises Killed instead of the nth rename onto that name."""
    events: list[str] = []
    real_replace, real_unlink = os.replace, Path.unlink

    def replace(src: Any, dst: Any, *args: Any, **kw: Any) -> None:
        name = Path(dst).name
        if name in RECORD_FILES:
            events.append(f"write {name}")
            if kill_at == (name, events.count(f"write {name}")):
                raise Killed
        real_replace(src, dst, *args, **kw)

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name in RECORD_FILES and self.exists():
            events.append(f"remove {self.name}")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    return events


def test_a_rebuild_invalidates_first_and_writes_release_json_last(
    built: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = spy_on_record_writes(monkeypatch)

    build(built, force=True)

    assert events == ["write release.json", "remove SHA256SUMS", "remove provenance.json",
                      "write SHA256SUMS", "write provenance.json", "write release.json"]


@pytest.mark.parametrize("kill_at", [("release.json", 1), ("SHA256SUMS", 1), ("provenance.json", 1),
                                     ("release.json", 2)], ids=lambda k: f"{k[0]}#{k[1]}")
def test_a_rebuild_killed_at_any_record_write_leaves_no_record_that_says_ok_over_changed_files(
    built: Workspace, monkeypatch: pytest.MonkeyPatch, kill_at: tuple[str, int]
) -> None:
    spy_on_record_writes(monkeypatch, kill_at)

    with pytest.raises(Killed):
        build(built, force=True)

    assert record_lies(built.release_dir) is None
    assert not list(built.release_dir.rglob(".*.tmp-*")), "no temp file left behind"


def test_a_cached_run_killed_at_any_record_write_leaves_an_honest_record(
    built: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for kill_at in (("SHA256SUMS", 1), ("provenance.json", 1), ("release.json", 1)):
        with monkeypatch.context() as patch:
            events = spy_on_record_writes(patch, kill_at)
            with pytest.raises(Killed):
                build(built, force=False)
        assert events[0] == "write SHA256SUMS", "a cached run invalidates nothing"
        assert record_lies(built.release_dir) is None


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tests.test_signing import write_key

    return Signer.load(write_key(tmp_path / "keys", ed25519.Ed25519PrivateKey.generate())[0])


def test_a_signed_rebuild_removes_the_old_signature_first_and_signs_before_release_json(
    built: Workspace, monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    build(built, force=False, signer=signer)
    events = spy_on_record_writes(monkeypatch)

    build(built, force=True, signer=signer)

    assert events == ["write release.json", "remove SHA256SUMS", "remove provenance.json",
                      "remove provenance.intoto.jsonl", "write SHA256SUMS", "write provenance.json",
                      "write provenance.intoto.jsonl", "write release.json"]


def test_a_signed_rebuild_killed_at_its_signature_leaves_no_record_that_says_ok(
    built: Workspace, monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    build(built, force=False, signer=signer)
    spy_on_record_writes(monkeypatch, ("provenance.intoto.jsonl", 1))

    with pytest.raises(Killed):
        build(built, force=True, signer=signer)

    assert record_lies(built.release_dir) is None
    assert not (built.release_dir / "provenance.intoto.jsonl").exists(), "no old signature beside new bytes"


def test_a_run_that_changes_nothing_writes_no_record_file(built: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    build(built, force=False)  # every artifact now "cached": that is a change of the record
    before = {name: (built.release_dir / name).read_bytes() for name in UNSIGNED_FILES}
    events = spy_on_record_writes(monkeypatch)

    build(built, force=False)

    assert events == []
    assert {name: (built.release_dir / name).read_bytes() for name in UNSIGNED_FILES} == before
    assert record_lies(built.release_dir) is None


@pytest.mark.parametrize("how", ["deleted", "altered"])
@pytest.mark.parametrize("lost", UNSIGNED_FILES[1:])
def test_a_run_that_changes_nothing_still_writes_a_missing_or_altered_record_file(
    built: Workspace, lost: str, how: str
) -> None:
    build(built, force=False)
    good = (built.release_dir / lost).read_bytes()
    if how == "deleted":
        (built.release_dir / lost).unlink()
    else:
        (built.release_dir / lost).write_bytes(good.replace(b"a", b"b", 1))

    build(built, force=False)

    assert (built.release_dir / lost).read_bytes() == good
    assert record_lies(built.release_dir) is None
