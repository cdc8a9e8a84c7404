"""What an interrupted run leaves behind is repaired or reused by the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.sources import FetchOptions, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec, Upstream, git
from tests.sources.conftest import Events


def _mirror(options: FetchOptions, upstream: Upstream) -> Path:
    return options.cache_dir / mirror_name(upstream.url)


def test_stale_git_lock_files_in_the_mirror_are_removed(
    upstream_template: Upstream, options: FetchOptions, events: Events
) -> None:
    fetch([RepoSpec(name="felix", url=upstream_template.url, ref="v1.0")], options)
    mirror = _mirror(options, upstream_template)
    for stale in ("shallow.lock", "packed-refs.lock", "refs/tags/v1.1.lock", "config.lock"):
        (mirror / stale).write_text("")

    # v1.1 is not cached yet: this needs a real fetch into the mirror.
    checkout = fetch([RepoSpec(name="node", url=upstream_template.url, ref="v1.1")], options, on_event=events)

    assert checkout["node"].commit == upstream_template.commits["r1"]
    assert "removed shallow.lock left by an interrupted run" in events.messages("node")
    assert list(mirror.rglob("*.lock")) == []


def test_stale_index_lock_in_the_checkout_is_removed(
    upstream_template: Upstream, options: FetchOptions, events: Events
) -> None:
    repo = RepoSpec(name="felix", url=upstream_template.url, ref="v1.0")
    path = fetch([repo], options)["felix"].path
    (path / ".git" / "index.lock").write_text("")

    fetch([repo], options, on_event=events)

    assert "removed index.lock left by an interrupted run" in events.messages("felix")
    assert git("status", "--porcelain", cwd=path) == ""


@pytest.mark.parametrize("damage", ["empty", "no-objects", "not-a-repo-file"])
def test_damaged_mirror_is_discarded_and_rebuilt(
    upstream_template: Upstream, options: FetchOptions, events: Events, damage: str
) -> None:
    mirror = _mirror(options, upstream_template)
    if damage == "empty":
        mirror.mkdir(parents=True)
    elif damage == "no-objects":
        mirror.mkdir(parents=True)
        (mirror / "HEAD").write_text("ref: refs/heads/main\n")
        (mirror / "config").write_text("[core]\n\tbare = true\n")
    else:
        mirror.parent.mkdir(parents=True)
        mirror.write_text("half a mirror")

    checkout = fetch([RepoSpec(name="felix", url=upstream_template.url, ref="v1.0")], options, on_event=events)

    assert checkout["felix"].commit == upstream_template.commits["c2"]
    assert f"discarding damaged mirror {mirror}" in events.messages("felix")
    assert git("rev-parse", "--is-bare-repository", git_dir=mirror) == "true"


def test_leftover_temporary_mirror_is_removed(
    upstream_template: Upstream, options: FetchOptions, events: Events
) -> None:
    leftover = options.cache_dir / f".tmp~{mirror_name(upstream_template.url)}~abc123"
    (leftover / "objects").mkdir(parents=True)

    fetch([RepoSpec(name="felix", url=upstream_template.url, ref="v1.0")], options, on_event=events)

    assert not leftover.exists()
    assert f"removed {leftover.name} left by an interrupted run" in events.messages("felix")
    assert sorted(p.name for p in options.cache_dir.iterdir() if p.is_dir()) == [mirror_name(upstream_template.url)]


def test_checkout_directory_that_is_no_repository_is_replaced(
    upstream_template: Upstream, options: FetchOptions
) -> None:
    path = options.checkout_dir / "felix"
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "old").write_text("from some other tool\n")

    fetch([RepoSpec(name="felix", url=upstream_template.url, ref="v0.9")], options)

    assert sorted(p.name for p in path.iterdir()) == [".git", ".gitignore", "VERSION", "c1"]


# Where the kill lands varies from run to run; wherever it lands, the next run works.
SCRIPT = """
import sys
from pathlib import Path
from orchestrator.sources import FetchOptions, fetch
from tests.helpers.gitrepos import RepoSpec

url, cache, src = sys.argv[1:4]
refs = ["v1.0", "v1.1", "v2.0-nobranch", "main", "v0.9", "release-1", "deadbeef"]
fetch(
    [RepoSpec(name=f"r{i}", url=url, ref=ref) for i, ref in enumerate(refs)],
    FetchOptions(cache_dir=Path(cache), checkout_dir=Path(src), jobs=2, backoff=0.0),
)
"""


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9])
def test_run_killed_midway_leaves_a_cache_the_next_run_can_use(
    upstream_template: Upstream, options: FetchOptions, project_root: Path, delay: float
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, upstream_template.url, str(options.cache_dir), str(options.checkout_dir)],
        cwd=project_root,
        env={**os.environ, "PYTHONPATH": str(project_root)},
        start_new_session=True,  # kill git children too, as Ctrl-C or an OOM kill would
    )
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    refs = {"v1.0": "c2", "v1.1": "r1", "v2.0-nobranch": "n1", "main": "c4", "release-1": "r2"}
    repos = [RepoSpec(name=f"r{i}", url=upstream_template.url, ref=ref) for i, ref in enumerate(refs)]
    checkouts = fetch(repos, options)

    assert [c.commit for c in checkouts.values()] == [upstream_template.commits[x] for x in refs.values()]
    for checkout in checkouts.values():
        assert git("status", "--porcelain", "--ignored", cwd=checkout.path) == ""
