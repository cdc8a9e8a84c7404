"""`clean`: a release, a workspace, the mirror cache; never anything outside them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator import housekeeping
from orchestrator.sources import mirror_name
from tests.helpers.cli import run_cli

MANIFEST = """\
schema: 1
release: v1.0.0
repos:
  app:
    url: https://example.invalid/app.git
    ref: v1.0.0
    artifacts:
      app: {type: library}
"""


def workspace_with_two_releases(tmp_path: Path) -> Path:
    for release in ("v1.0.0", "v0.9.0"):
        for part in (f"dist/{release}/bin", f".build/state/{release}", f".build/logs/{release}"):
            (tmp_path / part).mkdir(parents=True)
            (tmp_path / part / "file").write_text(release)
    (tmp_path / ".build/src/app").mkdir(parents=True)
    (tmp_path / "manifest.yaml").write_text(MANIFEST)
    (tmp_path / "notes.txt").write_text("mine")
    return tmp_path


def clean(workspace: Path, *args: str, **env: str) -> tuple[int, str]:
    result = run_cli("clean", *args, program="orchestrator", cwd=workspace,
                     env={"XDG_CACHE_HOME": str(workspace / "cache"), **env})
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout + result.stderr


def test_clean_removes_only_the_manifests_release(tmp_path: Path) -> None:
    workspace = workspace_with_two_releases(tmp_path)
    code, out = clean(workspace)
    assert code == 0, out
    assert "removed dist/v1.0.0" in out and "freed" in out
    for gone in ("dist/v1.0.0", ".build/state/v1.0.0", ".build/logs/v1.0.0"):
        assert not (workspace / gone).exists()
    for kept in ("dist/v0.9.0", ".build/state/v0.9.0", ".build/logs/v0.9.0", ".build/src/app", "notes.txt"):
        assert (workspace / kept).exists()


def test_a_dry_run_removes_nothing(tmp_path: Path) -> None:
    workspace = workspace_with_two_releases(tmp_path)
    code, out = clean(workspace, "--all", "--dry-run")
    assert code == 0 and "would remove dist" in out and "would remove .build" in out
    assert (workspace / "dist/v1.0.0/bin/file").exists()


def test_clean_all_removes_the_workspaces_own_directories_only(tmp_path: Path) -> None:
    workspace = workspace_with_two_releases(tmp_path)
    code, out = clean(workspace, "--all")
    assert code == 0, out
    assert sorted(p.name for p in workspace.iterdir()) == [".build", "manifest.yaml", "notes.txt"]
    assert sorted(p.name for p in (workspace / ".build").iterdir()) == ["workspace.lock"], \
        "only the workspace lock the cleaning run held stays"


def test_a_symlinked_release_directory_is_unlinked_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "manifest.yaml").write_text(MANIFEST)
    (workspace / "dist").mkdir()
    (workspace / "dist/v1.0.0").symlink_to(outside)
    code, out = clean(workspace)
    assert code == 0, out
    assert not (workspace / "dist/v1.0.0").exists() and (outside / "precious").read_text() == "keep me"


def test_a_workspace_directory_that_points_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "v1.0.0").mkdir(parents=True)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "manifest.yaml").write_text(MANIFEST)
    (workspace / "dist").symlink_to(outside)
    code, out = clean(workspace)
    assert code == 1 and "refusing to remove" in out and "outside the workspace" in out
    assert (outside / "v1.0.0").is_dir()


def unused_since(mirror: Path, days: int) -> None:
    """Date ``mirror`` (and so its last use, as clean judges it) ``days`` back."""
    when = time.time() - days * 86400
    os.utime(mirror, (when, when))


def test_clean_cache_prunes_unnamed_unused_mirrors_and_leftovers_and_keeps_the_manifests(tmp_path: Path) -> None:
    workspace = workspace_with_two_releases(tmp_path)
    cache = workspace / "cache/orchestrator/git"
    kept = cache / mirror_name("https://example.invalid/app.git")
    other = cache / mirror_name("https://example.invalid/other.git")
    for mirror in (kept, other):
        (mirror / "objects").mkdir(parents=True)
        (mirror.parent / f"{mirror.name}.lock").touch()
        unused_since(mirror, 31)
    (cache / ".tmp~x.git~abc").mkdir()
    (cache / "gone.git.lock").touch()
    code, out = clean(workspace, "--cache")
    assert code == 0, out
    assert kept.is_dir() and (cache / f"{kept.name}.lock").exists()
    assert not other.exists(), "lock files stay: a fetch may be waiting on one"
    assert not (cache / ".tmp~x.git~abc").exists()
    assert "mirror of a repository the manifest does not name" in out


def test_a_mirror_a_fetch_is_using_is_kept(tmp_path: Path) -> None:
    import fcntl

    workspace = workspace_with_two_releases(tmp_path)
    cache = workspace / "cache/orchestrator/git"
    busy = cache / mirror_name("https://example.invalid/other.git")
    (busy / "objects").mkdir(parents=True)
    unused_since(busy, 31)
    fd = os.open(cache / f"{busy.name}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a fetch in another workspace holds it
    try:
        code, out = clean(workspace, "--cache")
    finally:
        os.close(fd)
    assert code == 0, out
    assert busy.is_dir() and "in use by a running fetch" in out


def test_remove_refuses_everything_when_one_path_is_outside_the_roots(tmp_path: Path) -> None:
    (tmp_path / "root/a").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(housekeeping.CleanError):
        housekeeping.remove([(tmp_path / "root/a", "a"), (tmp_path / "elsewhere", "b")], roots=[tmp_path / "root"])
    assert (tmp_path / "root/a").is_dir(), "nothing is removed when any path is refused"
    with pytest.raises(housekeeping.CleanError):
        housekeeping.remove([(tmp_path / "root", "the root itself")], roots=[tmp_path / "root"])


def test_clean_waits_its_turn_behind_a_writer_and_a_dry_run_does_not(tmp_path: Path) -> None:
    from orchestrator.workspace import hold

    workspace = workspace_with_two_releases(tmp_path)
    with hold(workspace, wait=False, on_wait=lambda line: None):
        code, out = clean(workspace)
        assert code == 1 and "use --wait" in out, out
        assert (workspace / "dist/v1.0.0").is_dir()
        dry, out = clean(workspace, "--dry-run")
        assert dry == 0 and "would remove dist/v1.0.0" in out
