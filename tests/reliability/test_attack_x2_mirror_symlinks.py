"""A mirror in the shared cache (or a checkout's .git) whose directories are symlinks
is not the orchestrator's: it is made again, and nothing is read, written or removed
where the symlinks point.

Before: with ``refs -> /elsewhere`` in a mirror, the stale-lock sweep of the next fetch
deleted every ``*.lock`` file below /elsewhere ("removed refs/deep/important.lock left
by an interrupted run"), and git wrote the mirror's refs there; ``objects -> /elsewhere``
made every fetch write objects out of the cache.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from orchestrator.sources import FetchOptions, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec
from tests.reliability.isolation_helpers import make_repo


@pytest.mark.parametrize("entry", ["refs", "objects", "objects/pack", "refs/tags"])
def test_a_directory_of_a_mirror_that_is_a_symlink_gets_the_mirror_made_again(entry: str, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", {"a": "a\n"})
    url = (tmp_path / "repo").as_uri()
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src", backoff=0.0)
    fetch([RepoSpec(name="tool", url=url, ref="v1")], options)
    mirror = options.cache_dir / mirror_name(url)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(mirror / entry, elsewhere)  # its content, so git still finds what it needs
    os.symlink(elsewhere, mirror / entry)
    (elsewhere / "deep").mkdir()
    (elsewhere / "deep" / "important.lock").write_text("keep\n")
    events: list[str] = []

    fetch([RepoSpec(name="tool", url=url, ref="v1")], options, on_event=lambda name, message: events.append(message))

    assert (elsewhere / "deep" / "important.lock").exists(), events
    assert f"not trusting {mirror}: it holds {entry}, a symlink" in events
    assert not (mirror / entry).is_symlink()
