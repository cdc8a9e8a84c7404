"""Cache state records (.build/state/<release>/*.json) are untrusted: one that is not
exactly what the orchestrator writes means "rebuild", with the reason in the log,
never a failure and never a traceback; one that names a file outside the release, or a
symlink, never makes an artifact "cached".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import cache
from orchestrator.outputs import ArtifactOutput, FileRecord
from tests.reliability.record_helpers import Workspace, make_workspace

KEY = "a" * 64


def state_file(tmp_path: Path) -> tuple[Path, Path]:
    """A state dir holding a good record of artifact ``tool`` whose file is in the release dir."""
    release_dir = tmp_path / "dist"
    (release_dir / "bin").mkdir(parents=True)
    (release_dir / "bin/tool").write_text("tool\n")
    os.chmod(release_dir / "bin/tool", 0o755)
    state = tmp_path / "state"
    import hashlib

    digest = hashlib.sha256(b"tool\n").hexdigest()
    cache.save(state, "tool", KEY, ArtifactOutput(files=(FileRecord(path="bin/tool", sha256=digest, size=5,
                                                                    mode=0o755),)))
    return state, release_dir


def rewrite(state: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    path = state / "tool.json"
    data = json.loads(path.read_text())
    result = edit(data)
    path.write_text(result if isinstance(result, str) else json.dumps(data))


def test_a_good_state_record_is_cached(tmp_path: Path) -> None:
    state, release_dir = state_file(tmp_path)

    output, why = cache.lookup(state, "tool", KEY, release_dir=release_dir, engine=None)

    assert why == "cached" and output is not None and output.files[0].mode == 0o755


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: "[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    (lambda d: d.update(files=5), "files: expected an array, got a number (5)"),
    (lambda d: d.update(key=5), "key: expected 64 hex digits, got a number (5)"),
    (lambda d: d.update(images="x"), "images: expected an array, got a string ('x')"),
    (lambda d: d["files"][0].pop("sha256") and None, "files[0].sha256: missing"),
    (lambda d: d["files"][0].update(size="5"), "files[0].size: expected an integer"),
    (lambda d: d["files"][0].update(path="../../../../etc/hostname"),
     "files[0].path: expected a relative path inside the release directory"),
    (lambda d: d.update(extra=1), "extra: unknown field"),
])
def test_a_damaged_state_record_means_rebuild_with_the_reason(
    tmp_path: Path, edit: Callable[[dict[str, Any]], Any], reason: str
) -> None:
    state, release_dir = state_file(tmp_path)
    rewrite(state, edit)

    output, why = cache.lookup(state, "tool", KEY, release_dir=release_dir, engine=None)

    assert output is None
    assert why.startswith(f"unreadable cache record: {state / 'tool.json'}: ") and reason in why


def test_an_oversized_or_special_state_file_means_rebuild_without_reading_it(tmp_path: Path) -> None:
    state, release_dir = state_file(tmp_path)
    path = state / "tool.json"
    with path.open("r+b") as f:
        f.truncate(2 * 1024 * 1024)  # sparse
    assert cache.lookup(state, "tool", KEY, release_dir=release_dir, engine=None) == (
        None, f"unreadable cache record {path}: larger than 1 MiB")
    path.unlink()
    os.mkfifo(path)  # no writer: reading would block the build forever
    assert cache.lookup(state, "tool", KEY, release_dir=release_dir, engine=None) == (
        None, f"unreadable cache record {path}: not a regular file")


def test_a_published_file_swapped_for_a_symlink_or_given_another_mode_is_not_cached(tmp_path: Path) -> None:
    state, release_dir = state_file(tmp_path)
    os.chmod(release_dir / "bin/tool", 0o4755)
    assert cache.lookup(state, "tool", KEY, release_dir=release_dir, engine=None) == (
        None, "bin/tool changed: mode 4755, recorded 0755")
    copy = tmp_path / "copy"
    copy.write_text("tool\n")
    (release_dir / "bin/tool").unlink()
    (release_dir / "bin/tool").symlink_to(copy)
    assert cache.lookup(state, "tool", KEY, release_dir=release_dir, engine=None) == (
        None, "bin/tool changed: a symbolic link, not a file")


# -- through the real CLI -------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = make_workspace(tmp_path_factory.mktemp("state"), first="mkdir -p out && echo 1 > out/first",
                               second="mkdir -p out && echo 2 > out/second")
    result = workspace.run("build", "--all")
    assert result.returncode == 0, result.stderr
    return workspace


@pytest.mark.parametrize("damage", ["{", '{"key": 5, "files": [], "images": []}', "[]", "[" * 50_000])
def test_a_build_over_a_damaged_state_record_rebuilds_that_artifact_and_says_why(built: Workspace, damage: str) -> None:
    (built.root / ".build/state/r1/first.json").write_text(damage)

    result = built.run("build", "--all")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "[ok] first" in result.stderr, "rebuilt, not cached and not failed"
    log = (built.root / ".build/logs/r1/first.log").read_text()
    assert "building: unreadable cache record: " in log
    assert json.loads((built.release_dir / "release.json").read_text())["status"] == "ok"
