"""Scenario 5 (issue #12): the shared cache in a registry, shards and the assemble step.

On two releases (the demo, and a synthetic one of N independent binaries burning a known
CPU time each), in one run, interleaved per repeat:

- cold single-machine build, no cache (the baseline);
- cold single-machine build writing a fresh cache repository (the cache's overhead);
- cold build in 2 shards at once, each a "machine" of its own (its own workspace, and
  for the demo its own Docker engine when a second one can be started here), writing a
  fresh cache repository, then an assemble in a third workspace: the makespan is the
  slower shard plus the assemble;
- warm restore of the whole release from the cache into a fresh workspace.

This machine has 2 cores and other work on it: a "machine" is emulated by giving each
shard, and the single-machine baseline, one worker (--jobs 1), so that two shards use
the two cores as two one-core machines would; with --jobs 2 a single build already
keeps both cores busy and two shards could only fight over them. The mirror cache is
warm for every build (fetching is scenario 3), so the figures are about building.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import fixtures
import services
from harness import (
    ORCHESTRATOR,
    VENV_BIN,
    BenchError,
    Timed,
    clean_env,
    docker_available,
    ratio,
    run_timed,
    stats,
    target,
)
from scenario_parallel import calibrate


def _release(workspace: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((workspace / "dist" / name / "release.json").read_text(encoding="utf-8")))


def _file_bytes(workspace: Path, name: str) -> int:
    return sum(f["size"] for a in _release(workspace, name)["artifacts"].values() for f in a["files"])


class Bench:
    """One release measured: the commands, their workspaces, the checks of their records."""

    def __init__(self, root: Path, manifest: Path, release: str, env: dict[str, str], registry: str,
                 storage: Path, second_host: str | None, jobs: int) -> None:
        self.root, self.manifest, self.release, self.env = root, manifest, release, env
        self.registry, self.storage, self.second_host, self.jobs = registry, storage, second_host, jobs
        self.count = 0

    def build(self, workspace: Path, *args: str, env: dict[str, str] | None = None) -> Timed:
        self.count += 1
        return run_timed([str(ORCHESTRATOR), "build", "--all", "--jobs", str(self.jobs), "--manifest",
                          str(self.manifest), "--workspace", str(workspace), "--progress", "plain", *args],
                         env={**self.env, **(env or {})}, log=self.root / "logs" / f"{self.count}-{workspace.name}.log")

    def expect(self, workspace: Path, statuses: set[str], what: str) -> None:
        found = {a["status"] for a in _release(workspace, self.release)["artifacts"].values()}
        if not found <= statuses:
            raise BenchError(f"{what}: artifacts were {sorted(found)}, expected only {sorted(statuses)}")

    def once(self, run_no: int) -> dict[str, Any]:
        ws = self.root / f"run{run_no}"
        cold = self.build(ws / "cold")
        self.expect(ws / "cold", {"ok"}, "cold build")
        before = services.stored_bytes(self.storage)
        with_cache = self.build(ws / "cached", "--cache", f"{self.registry}/single-{run_no}")
        self.expect(ws / "cached", {"ok"}, "cold build with the cache")
        stored = services.stored_bytes(self.storage) - before
        restore = self.build(ws / "restore", "--cache", f"{self.registry}/single-{run_no}")
        self.expect(ws / "restore", {"restored"}, "restore into a fresh workspace")
        cache = f"{self.registry}/shards-{run_no}"
        walls: dict[int, Timed] = {}

        def shard(index: int) -> None:
            env = {"DOCKER_HOST": self.second_host} if index == 2 and self.second_host else {}
            walls[index] = self.build(ws / f"shard{index}", "--cache", cache, "--shard", f"{index}/2", env=env)

        threads = [threading.Thread(target=shard, args=(i,)) for i in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(walls) != 2:
            raise BenchError("a shard did not finish; see the logs")
        assemble = self.build(ws / "assembled", "--cache", cache, "--assemble")
        self.expect(ws / "assembled", {"restored"}, "assemble")
        same = (ws / "assembled" / "dist" / self.release / "SHA256SUMS").read_bytes() == \
            (ws / "cold" / "dist" / self.release / "SHA256SUMS").read_bytes()
        figures = {
            "cold": cold.wall, "cold_with_cache": with_cache.wall, "restore": restore.wall,
            "shard1": walls[1].wall, "shard2": walls[2].wall, "assemble": assemble.wall,
            "makespan": max(walls[1].wall, walls[2].wall) + assemble.wall,
            "bytes_stored": stored, "bytes_restored": _file_bytes(ws / "restore", self.release),
            "assembled_identical": same,
        }
        shutil.rmtree(ws, ignore_errors=True)
        return figures


def measure(bench: Bench, repeats: int, what: str) -> dict[str, Any]:
    runs = [bench.once(i) for i in range(repeats)]

    def median(key: str) -> dict[str, Any]:
        return stats([float(r[key]) for r in runs])

    cold, cached, restore = median("cold"), median("cold_with_cache"), median("restore")
    makespan = median("makespan")
    speedup = ratio(cold["median"], restore["median"])
    overhead = None if not cold["median"] else round(cached["median"] / cold["median"] - 1, 3)
    half = cold["median"] / 2
    shard_ratio = ratio(makespan["median"], half)
    return {
        "what": what,
        "jobs_per_machine": bench.jobs,
        "second_engine": bench.second_host is not None,
        "cold_wall_s": cold, "cold_with_cache_wall_s": cached, "restore_wall_s": restore,
        "shard1_wall_s": median("shard1"), "shard2_wall_s": median("shard2"), "assemble_wall_s": median("assemble"),
        "two_shards_makespan_s": makespan,
        "bytes_stored": runs[0]["bytes_stored"], "bytes_restored_files": runs[0]["bytes_restored"],
        "assembled_identical_to_single": all(r["assembled_identical"] for r in runs),
        "restore_speedup": speedup, "cache_overhead": overhead, "makespan_vs_half_single": shard_ratio,
        "targets": [
            target("restore into a fresh workspace vs cold build", ">= 5x", speedup,
                   speedup is not None and speedup >= 5),
            target("2 shards + assemble (makespan) vs half the single-machine time", "<= 1.3x", shard_ratio,
                   shard_ratio is not None and shard_ratio <= 1.3),
            target("cache overhead on a cold build", "< 10%", overhead, overhead is not None and overhead < 0.10),
        ],
    }


def run(root: Path, *, repeats: int, artifacts: int, burn: float, run_id: str) -> dict[str, Any]:
    home = root / "home"
    env = clean_env(home)
    results: dict[str, Any] = {}
    with services.registry(root / "registry") as address, services.second_engine(root / "engine2") as second:
        turns, one_burn = calibrate(env)
        turns = max(1, int(turns * burn))
        sources: dict[str, tuple[Path, str]] = {}
        for i in range(artifacts):
            name = f"burn{i:02d}"
            sources[name] = (root / "repos" / f"{name}.git", fixtures.cpu_repo(root / "repos" / f"{name}.git", env))
        synthetic = fixtures.write_yaml(root / "synthetic.yaml", fixtures.cpu_manifest(sources, turns))
        _warm_mirrors(synthetic, env, root)
        bench = Bench(root / "synthetic", synthetic, "bench-cpu", env, address, root / "registry", None, 1)
        results["synthetic"] = measure(bench, repeats, f"{artifacts} independent binaries, each burning "
                                       f"~{one_burn * burn:.2f}s of CPU; one worker per machine")
        demo = _demo_manifest(root, run_id, env)
        if demo is not None:
            _warm_mirrors(demo, env, root)
            bench = Bench(root / "demo", demo, "v3.2.0-demo", env, address, root / "registry", second, 1)
            results["demo"] = measure(bench, repeats, "the demo release (11 artifacts, 4 of them images); shard 2 "
                                      "on a second engine" if second else "the demo release; both shards on the "
                                      "default engine (no second one could be started)")
    targets = [t | {"release": name} for name, r in results.items() for t in r.pop("targets")]
    return {"releases": results, "targets": targets,
            "note": "2 cores shared with other work; a machine is one worker (--jobs 1): see the docstring"}


def _warm_mirrors(manifest: Path, env: dict[str, str], root: Path) -> None:
    run_timed([str(ORCHESTRATOR), "fetch", "--all", "--manifest", str(manifest), "--workspace",
               str(root / "fetch-ws")], env=env, log=root / "logs" / f"fetch-{manifest.stem}.log")


def _demo_manifest(root: Path, run_id: str, env: dict[str, str]) -> Path | None:
    """The demo's repositories and manifest, images named under this run's prefix (None
    without a Docker engine)."""
    if docker_available() is not None:
        return None
    made = run_timed([str(VENV_BIN / "python"), "-c",
                      "import sys; from pathlib import Path; from orchestrator.sandbox import create_demo; "
                      "print(create_demo(Path(sys.argv[1]), registry=sys.argv[2]))", str(root / "demo-repos"),
                      f"orchestrator-bench-{run_id}/"], env=env)
    return Path(made.output.strip().splitlines()[-1])
