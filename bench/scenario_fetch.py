"""Scenario 3: cold `orchestrator fetch` of a long-history repository vs `git clone --mirror`.

Bytes are what each operation added to its object store: the pack files plus loose
object files git wrote while receiving (their sizes on disk as files, not rounded to
blocks). Over file:// git runs the same upload-pack as a server, so this is the pack
the remote sent; git only explodes packs of under 100 objects into loose files
(transfer.unpackLimit), which zlib-compresses them about as a pack would.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import fixtures
from harness import ORCHESTRATOR, BenchError, clean_env, load_average, ratio, run_timed, stats, target


def object_bytes(git_dir: Path) -> int:
    """Bytes of received objects in ``git_dir``: pack files plus loose object files."""
    objects = git_dir / "objects"
    packs = sum(p.stat().st_size for p in (objects / "pack").glob("*.pack"))
    loose = sum(p.stat().st_size for p in objects.glob("[0-9a-f][0-9a-f]/*") if p.is_file())
    return packs + loose


def count_objects(git_dir: Path, env: dict[str, str]) -> dict[str, int]:
    """``git count-objects -v`` as numbers (sizes in KiB, as git prints them)."""
    out = subprocess.run(["git", "--git-dir", str(git_dir), "count-objects", "-v"], capture_output=True, text=True,
                         env=env, check=True).stdout
    return {key: int(value) for key, _, value in (line.partition(": ") for line in out.splitlines())}


def run(root: Path, *, repeats: int, commits: int) -> dict[str, Any]:
    home = root / "home"
    env = clean_env(home)
    started = time.perf_counter()
    repo = fixtures.history_repo(root / "history.git", commits, env)
    generated = time.perf_counter() - started
    manifest = fixtures.write_yaml(root / "manifest.yaml", fixtures.history_manifest(repo["path"], repo["commit"]))
    url = repo["path"].as_uri()
    source_objects = count_objects(repo["path"], env)

    fetch_wall: list[float] = []
    fetch_bytes: list[int] = []
    checkout_bytes: list[int] = []
    mirror_wall: list[float] = []
    mirror_bytes: list[int] = []
    shallow_wall: list[float] = []
    shallow_bytes: list[int] = []
    mirror_counts: dict[str, int] = {}
    fetch_counts: dict[str, int] = {}
    load_before = load_average()
    for i in range(repeats):
        cache, workspace = root / f"cache-{i}", root / f"ws-{i}"
        timed = run_timed([str(ORCHESTRATOR), "fetch", "history", "--manifest", str(manifest),
                           "--workspace", str(workspace)], env={**env, "XDG_CACHE_HOME": str(cache)},
                          log=root / "logs" / f"fetch-{i}.log")
        mirrors = list((cache / "orchestrator" / "git").glob("*.git"))
        if len(mirrors) != 1:
            raise BenchError(f"expected one mirror under {cache}, found {mirrors}")
        fetch_wall.append(timed.wall)
        fetch_bytes.append(object_bytes(mirrors[0]))
        fetch_counts = count_objects(mirrors[0], env)
        checkout_bytes.append(object_bytes(workspace / ".build" / "src" / "history" / ".git"))
        shutil.rmtree(cache)
        shutil.rmtree(workspace)

        clone = root / f"mirror-{i}.git"
        timed = run_timed(["git", "clone", "--quiet", "--mirror", url, str(clone)], env=env)
        mirror_wall.append(timed.wall)
        mirror_bytes.append(object_bytes(clone))
        mirror_counts = count_objects(clone, env)
        shutil.rmtree(clone)

        # Not a target: the least a careful human could transfer, for reference.
        clone = root / f"shallow-{i}"
        timed = run_timed(["git", "clone", "--quiet", "--bare", "--depth", "1", "--branch", "v1.0.0", url,
                           str(clone)], env=env)
        shallow_wall.append(timed.wall)
        shallow_bytes.append(object_bytes(clone))
        shutil.rmtree(clone)

    fetched, full = stats(fetch_bytes, 0), stats(mirror_bytes, 0)
    share = ratio(100 * fetched["median"], full["median"], 2)
    return {
        "what": f"cold `orchestrator fetch` (fresh mirror cache and workspace) of a {commits}-commit repository "
                "pinned at an annotated tag 10 commits below main, vs `git clone --mirror` of it, over file://",
        "repository": {"commits": commits, "files_at_tip": repo["files_at_tip"], "generate_s": round(generated, 2),
                       "count_objects": source_objects},
        "orchestrator_fetch_wall_s": stats(fetch_wall),
        "orchestrator_fetch_bytes": fetched,
        "orchestrator_fetch_count_objects": fetch_counts,
        "orchestrator_checkout_bytes": stats(checkout_bytes, 0),
        "git_clone_mirror_wall_s": stats(mirror_wall),
        "git_clone_mirror_bytes": full,
        "git_clone_mirror_count_objects": mirror_counts,
        "git_clone_depth1_wall_s": stats(shallow_wall),
        "git_clone_depth1_bytes": stats(shallow_bytes, 0),
        "fetch_bytes_percent_of_full_clone": share,
        "fetch_time_over_full_clone": ratio(stats(fetch_wall)["median"], stats(mirror_wall)["median"]),
        "load_average": {"before": load_before, "after": load_average()},
        "targets": [target("cold fetch bytes vs full clone", "<= 10%", share, share is not None and share <= 10)],
    }
