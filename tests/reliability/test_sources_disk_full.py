"""A full disk in the mirror cache or under the checkouts: one clear line, never retried.

Runs on small real tmpfs mounts (root only); skipped with the reason where mounting
is not permitted.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.errors import EXIT_FAILED
from orchestrator.sources import FetchFailed, FetchOptions, NoSpaceError, fetch, mirror_name
from tests.helpers.cli import run_cli
from tests.helpers.gitrepos import EPOCH, RepoSpec, git
from tests.reliability.sources_helpers import write_manifest
from tests.sources.conftest import Events

Mount = Callable[[Path, str], Path]


@pytest.fixture
def tmpfs() -> Iterator[Mount]:
    """Mount a tmpfs of the given size at a directory; unmounted after the test."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="module")
def big_upstream(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A repository whose v1 commit holds 3 MiB that do not compress."""
    root = tmp_path_factory.mktemp("big")
    work = root / "work"
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    (work / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "--message", "big", cwd=work, when=EPOCH)
    git("tag", "v1", cwd=work)
    git("clone", "--quiet", "--bare", "--no-local", str(work), str(root / "big.git"))
    return (root / "big.git").as_uri()


def test_a_full_mirror_cache_is_one_error_naming_the_mirror_never_retried(
    big_upstream: str, tmpfs: Mount, tmp_path: Path
) -> None:
    cache = tmpfs(tmp_path / "cache", "1m")
    options = FetchOptions(cache_dir=cache, checkout_dir=tmp_path / "src", retries=2, backoff=0.0)
    events = Events()

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=big_upstream, ref="v1")], options, on_event=events)

    error = caught.value.failures["felix"]
    assert isinstance(error, NoSpaceError)
    assert str(error).splitlines()[0] == f"felix: no space left on device in {cache / mirror_name(big_upstream)}"
    assert "hint: free space" in str(error)
    assert caught.value.exit_code == EXIT_FAILED
    assert not [m for m in events.messages() if m.startswith("retrying")]
    # Nothing half-written looks finished: with room again, the next run just works.
    subprocess.run(["mount", "-o", "remount,size=16m", str(cache)], check=True)
    checkout = fetch([RepoSpec(name="felix", url=big_upstream, ref="v1")], options)["felix"]
    assert (checkout.path / "blob.bin").stat().st_size == 3 * 1024 * 1024
    assert git("fsck", "--no-dangling", git_dir=cache / mirror_name(big_upstream)) == ""


def test_a_full_checkout_disk_is_one_error_and_the_next_run_repairs_it(
    big_upstream: str, tmpfs: Mount, tmp_path: Path
) -> None:
    src = tmpfs(tmp_path / "src", "1m")
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=src, backoff=0.0)
    repo = RepoSpec(name="felix", url=big_upstream, ref="v1")

    with pytest.raises(FetchFailed) as caught:
        fetch([repo], options)

    error = caught.value.failures["felix"]
    assert isinstance(error, NoSpaceError)
    assert str(error).splitlines()[0].startswith(f"felix: no space left on device in {src / 'felix'}")
    subprocess.run(["mount", "-o", "remount,size=16m", str(src)], check=True)
    checkout = fetch([repo], dataclasses.replace(options, offline=True))["felix"]
    assert (checkout.path / "blob.bin").stat().st_size == 3 * 1024 * 1024
    assert git("status", "--porcelain", cwd=checkout.path) == ""


def test_through_the_cli_a_full_cache_exits_1_with_one_message(
    big_upstream: str, tmpfs: Mount, tmp_path: Path
) -> None:
    cache = tmpfs(tmp_path / "cache", "1m")
    manifest = write_manifest(tmp_path / "manifest.yaml", {"felix": (big_upstream, "v1")})

    result = run_cli("fetch", "--all", "--manifest", str(manifest), "--cache-dir", str(cache),
                     "--workspace", str(tmp_path / "ws"), program="orchestrator", cwd=tmp_path,
                     env={"HOME": str(tmp_path)})

    assert result.returncode == 1, result.stderr
    assert f"felix: no space left on device in {cache / mirror_name(big_upstream)}" in result.stderr
    assert "retrying" not in result.stderr
    assert "cannot reach" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cache_disk_full_before_git_even_starts_is_the_same_one_error(
    big_upstream: str, tmpfs: Mount, tmp_path: Path
) -> None:
    cache = tmpfs(tmp_path / "cache", "256k")
    filler = cache / "filler"
    with filler.open("wb") as out, pytest.raises(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    options = FetchOptions(cache_dir=cache, checkout_dir=tmp_path / "src", backoff=0.0)

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=big_upstream, ref="v1")], options)

    error = caught.value.failures["felix"]
    assert isinstance(error, NoSpaceError)
    assert str(error).startswith(f"felix: no space left on device in {cache}")
