"""A full disk while writing the record: one line naming the path and "no space left
on device", exit 1, the temp file removed, and no record that says ok over changed files.

dist/ is a real, small tmpfs (we run as root in CI); a recipe fills it at a chosen
moment, leaving a chosen number of pages free for the final writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.record_helpers import Workspace, assert_one_clean_message, make_workspace, record_lies

PAGE = os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def small_tmpfs(path: Path, pages: int) -> Iterator[None]:
    """A real tmpfs of ``pages`` pages mounted at ``path`` (skip when mounting is not permitted)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={pages * PAGE}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill(path: Path) -> None:
    """Fill the file system holding ``path`` to the last byte."""
    subprocess.run(f"dd if=/dev/zero of={path} bs=4096 2>/dev/null", shell=True)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace whose dist/ is a 64-page tmpfs. ``second`` fills it when
    control/fill exists, then frees as many pages as control/fill says."""
    control = tmp_path / "control"
    dist = tmp_path / "ws" / "dist"
    fill = (f"if [ -e {control}/fill ]; then dd if=/dev/zero of={dist}/filler bs=4096 2>/dev/null; "
            f"truncate -s -$(( $(cat {control}/fill) * {PAGE} )) {dist}/filler; fi")
    ws = make_workspace(tmp_path, first="mkdir -p out && date +%s%N > out/first",
                        second=f"mkdir -p out && : > out/second && {fill}", library=False)
    with small_tmpfs(dist, 64):
        first = ws.run("build", "--all")
        assert first.returncode == 0, first.stderr
        yield ws


def status(workspace: Workspace) -> str:
    return str(json.loads((workspace.release_dir / "release.json").read_text())["status"])


def temp_files(workspace: Workspace) -> list[Path]:
    return list(workspace.release_dir.rglob(".*.tmp-*"))


@pytest.mark.parametrize(("free_pages", "failing"), [(0, "SHA256SUMS"), (1, "provenance.json"),
                                                     (2, "release.json")])
def test_a_full_disk_at_each_record_write_is_one_message_naming_the_file_and_no_record_says_ok(
    workspace: Workspace, free_pages: int, failing: str
) -> None:
    (workspace.control / "fill").write_text(f"{free_pages}\n")

    result = workspace.run("build", "--all", "--force")

    assert result.returncode == 1, result.stderr
    assert_one_clean_message(result, f"error: cannot write {workspace.release_dir / failing}: "
                                     "no space left on device\n  hint: free space on the file system that holds")
    assert status(workspace) == "building", "the record of the run before no longer vouches for the new files"
    assert record_lies(workspace.release_dir) is None
    assert temp_files(workspace) == []


def test_a_disk_already_full_before_a_rebuild_leaves_the_old_record_intact_and_true(workspace: Workspace) -> None:
    fill(workspace.root / "dist/filler")
    before = {p.name: p.read_bytes() for p in workspace.release_dir.rglob("*") if p.is_file()}

    result = workspace.run("build", "--all", "--force")

    assert result.returncode == 1
    assert_one_clean_message(result, f"error: cannot write {workspace.release_dir / 'release.json'}: "
                                     "no space left on device")
    assert {p.name: p.read_bytes() for p in workspace.release_dir.rglob("*") if p.is_file()} == before
    assert status(workspace) == "ok" and record_lies(workspace.release_dir) is None
    assert temp_files(workspace) == []


def test_after_space_is_freed_the_next_build_completes_the_record(workspace: Workspace) -> None:
    (workspace.control / "fill").write_text("0\n")
    assert workspace.run("build", "--all", "--force").returncode == 1
    (workspace.control / "fill").unlink()
    (workspace.root / "dist/filler").unlink()

    again = workspace.run("build", "--all")

    assert again.returncode == 0, again.stderr
    assert status(workspace) == "ok" and record_lies(workspace.release_dir) is None


def test_a_full_disk_while_publish_records_a_digest_names_the_file_and_the_ref_that_landed(tmp_path: Path) -> None:
    from orchestrator.engine.dockerpy import Engine
    from orchestrator.publish import PublishFailed, publish_release
    from tests.helpers.fake_docker import FakeDockerClient
    from tests.helpers.registry import add_images, make_release, small_manifest

    manifest = small_manifest(tmp_path)
    fake = FakeDockerClient()
    dist = tmp_path / "dist"
    with small_tmpfs(dist, 64):
        release_dir = dist / manifest.release
        make_release(release_dir, manifest, add_images(fake, manifest))
        before = (release_dir / "release.json").read_bytes()
        fill(dist / "filler")

        with pytest.raises(PublishFailed) as caught:
            publish_release(release_dir, manifest, Engine(fake), log=lambda line: None, backoff=0.0)

        message = str(caught.value)
        assert message.startswith(f"publishing stopped: cannot write {release_dir / 'provenance.json'}: "
                                  "no space left on device")
        landed = caught.value.unrecorded
        assert landed is not None and f"  landed but not recorded: {landed.ref}@{landed.digest}\n" in message
        assert (release_dir / "release.json").read_bytes() == before, "the record is whole, and true"
        assert list(release_dir.rglob(".*.tmp-*")) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_a_full_quota_reads_like_a_full_disk_and_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    from orchestrator.fileops import NoSpaceError, write_atomic

    target = tmp_path / "release.json"
    target.write_text("old\n")

    def full(fd: int, data: bytes) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(NoSpaceError) as caught:
        write_atomic(target, b"new\n")
    monkeypatch.undo()

    assert str(caught.value).splitlines()[0] == f"cannot write {target}: no space left on device"
    assert caught.value.exit_code == 1
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["release.json"]
