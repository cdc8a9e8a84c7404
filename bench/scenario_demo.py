"""Scenario 2: the demo release, cold vs warm no-op `build --all`, and a naive script.

The demo's images are named from ``defaults.registry``; the bench sets it to a prefix
holding the run's id, so its images never replace the ``calico/*:v3.2.0`` images other
users of the same engine build, and can all be removed afterwards.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from harness import (
    ORCHESTRATOR,
    REPO_ROOT,
    VENV_BIN,
    BenchError,
    clean_env,
    docker_available,
    load_average,
    ratio,
    remove_images,
    run_timed,
    stats,
    target,
)
from profile_warm import import_costs

NAIVE = Path(__file__).resolve().parent / "naive_demo.sh"
PROFILE = Path(__file__).resolve().parent / "profile_warm.py"
SOURCE_LABEL = "org.opencontainers.image.source"


def _statuses(workspace: Path) -> dict[str, str]:
    record = json.loads((workspace / "dist" / "v3.2.0-demo" / "release.json").read_text(encoding="utf-8"))
    return {name: a["status"] for name, a in record["artifacts"].items()}


def _layer_cache_hits(text: str) -> int:
    # The classic builder says "Using cache" for every step it did not run.
    return text.count("Using cache")


def _breakdown(root: Path, manifest: Path, workspace: Path, env: dict[str, str]) -> dict[str, Any]:
    """One more warm no-op, instrumented: the stages inside the run, and what start-up imports."""
    argv = [str(manifest), str(workspace)]
    timed = run_timed([str(VENV_BIN / "python"), str(PROFILE), *argv], env=env, log=root / "logs" / "profile.log")
    marker = [line for line in timed.output.splitlines() if line.startswith("BENCH-PHASES ")]
    result: dict[str, Any] = {"wall_s": round(timed.wall, 3)}
    result.update(json.loads(marker[-1].split(" ", 1)[1]) if marker else {"error": "no BENCH-PHASES line"})
    timed = run_timed([str(VENV_BIN / "python"), "-X", "importtime", str(ORCHESTRATOR), "build", "--all",
                       "--manifest", *argv[:1], "--workspace", *argv[1:]], env=env, log=root / "logs" / "imports.log")
    result["imports"] = import_costs((root / "logs" / "imports.log").read_text(errors="replace"))
    return result


def _engine_costs(workspace: Path, repeats: int) -> dict[str, Any]:
    """What a warm build could ask the engine about the release's images: one list call
    filtered by the cache-key label, or one inspection per image (what it does)."""
    import os
    import time

    from orchestrator.builders.image import KEY_LABEL
    from orchestrator.engine.socketapi import SocketAPI, local_socket

    path = local_socket(os.environ)
    if path is None:
        return {"skipped": "the engine is not on a local unix socket"}
    record = json.loads((workspace / "dist" / "v3.2.0-demo" / "release.json").read_text(encoding="utf-8"))
    ids = [image["id"] for a in record["artifacts"].values() for image in a.get("images", [])]
    api = SocketAPI(path)
    listing: list[float] = []
    inspecting: list[float] = []
    labelled = 0
    for _ in range(repeats):
        started = time.perf_counter()
        labelled = len(api.images(KEY_LABEL))
        listing.append(time.perf_counter() - started)
        started = time.perf_counter()
        for image_id in ids:
            api.get_image(image_id)
        inspecting.append(time.perf_counter() - started)
    return {"images_of_the_release": len(ids), "images_with_the_label_on_the_engine": labelled,
            "one_labelled_list_call_s": stats(listing, 4), "one_inspection_per_image_s": stats(inspecting, 4)}


def run(root: Path, *, repeats: int, run_id: str) -> dict[str, Any]:
    problem = docker_available()
    if problem:
        raise BenchError(f"the demo scenario builds images and needs Docker: {problem} (try `bash .ci/docker-up`)")
    home = root / "home"
    env = clean_env(home)
    demo = root / "demo"
    # create_demo only writes the repositories and manifest; `orchestrator demo` would
    # also build images under the shared calico/* names.
    made = run_timed([str(VENV_BIN / "python"), "-c",
                      "import sys; from pathlib import Path; from orchestrator.sandbox import create_demo; "
                      "print(create_demo(Path(sys.argv[1])))", str(demo)], env=env)
    doc = yaml.safe_load(Path(made.output.strip().splitlines()[-1]).read_text(encoding="utf-8"))
    prefix = f"orchestrator-bench-{run_id}/"
    naive_prefix = f"orchestrator-bench-{run_id}-naive/"
    doc["defaults"]["registry"] = prefix
    manifest = demo / "manifest-bench.yaml"
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000), encoding="utf-8")
    label_key, label_value = "io.github.release-orchestrator.bench-run", run_id
    source_prefix = (demo / "repos").as_uri()

    def clean_images() -> None:
        remove_images(ref_prefixes=(prefix, naive_prefix),
                      label_prefixes={SOURCE_LABEL: source_prefix, label_key: label_value})

    naive_env = {**env, "IMAGE_PREFIX": naive_prefix, "IMAGE_LABEL": f"{label_key}={label_value}",
                 "PYTHON": str(VENV_BIN / "python"), "LIBCALICO_GO_COMMIT": doc["repos"]["libcalico-go"]["commit"]}

    def naive(tag: str) -> tuple[float, int]:
        out = root / f"naive-{tag}"
        log = root / "logs" / f"naive-{tag}.log"
        timed = run_timed(["sh", "-x", str(NAIVE), str(demo / "repos"), str(out)], env=naive_env, log=log)
        shutil.rmtree(out, ignore_errors=True)
        return timed.wall, _layer_cache_hits(timed.output)

    others: dict[str, list[float]] = {"cold": [], "warm": []}
    cpu: dict[str, list[float]] = {"cold": [], "warm": []}

    def orchestrate(workspace: Path, cache: Path, tag: str) -> tuple[float, dict[str, str], int]:
        timed = run_timed([str(ORCHESTRATOR), "build", "--all", "--manifest", str(manifest),
                           "--workspace", str(workspace)], env={**env, "XDG_CACHE_HOME": str(cache)},
                          log=root / "logs" / f"orchestrator-{tag}.log")
        logs = workspace / ".build" / "logs" / "v3.2.0-demo"
        hits = sum(_layer_cache_hits(p.read_text(errors="replace")) for p in logs.glob("*.log"))
        kind = tag.split("-")[0]
        cpu[kind].append(timed.cpu)
        if timed.others_cores is not None:
            others[kind].append(timed.others_cores)
        return timed.wall, _statuses(workspace), hits

    cold: list[float] = []
    warm: list[float] = []
    floor: list[float] = []
    naive_cold: list[float] = []
    naive_rerun: list[float] = []
    layer_hits = {"orchestrator_cold": 0, "naive_cold": 0}
    load_before = load_average()
    breakdown: dict[str, Any] = {}
    try:
        for i in range(repeats):
            clean_images()
            wall, hits = naive(f"cold-{i}")
            naive_cold.append(wall)
            layer_hits["naive_cold"] += hits
            wall, _ = naive(f"rerun-{i}")
            naive_rerun.append(wall)

            clean_images()
            workspace, cache = root / f"ws-{i}", root / f"cache-{i}"
            wall, statuses, hits = orchestrate(workspace, cache, f"cold-{i}")
            if set(statuses.values()) != {"ok"}:
                raise BenchError(f"cold demo build {i} was not a full build: {statuses}")
            cold.append(wall)
            layer_hits["orchestrator_cold"] += hits
            wall, statuses, _ = orchestrate(workspace, cache, f"warm-{i}")
            if set(statuses.values()) != {"cached"}:
                raise BenchError(f"warm demo build {i} rebuilt something: {statuses}")
            warm.append(wall)
            # The floor: Python, invoke and our task modules, listing the tasks (right after
            # the warm run, so that both see the same load).
            floor.append(run_timed([str(VENV_BIN / "invoke"), "--list"], env=env, cwd=REPO_ROOT,
                                   log=root / "logs" / f"invoke-list-{i}.log").wall)
            if i == repeats - 1:
                breakdown = _breakdown(root, manifest, workspace, {**env, "XDG_CACHE_HOME": str(cache)})
                breakdown["engine_lookups"] = _engine_costs(workspace, repeats)
            shutil.rmtree(workspace, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
    finally:
        clean_images()
    cold_s, warm_s = stats(cold), stats(warm)
    naive_s, rerun_s = stats(naive_cold), stats(naive_rerun)
    warm_vs_cold = ratio(cold_s["median"], warm_s["median"])
    floor_s = stats(floor)
    over_floor = ratio(warm_s["median"], floor_s["median"])
    return {
        "what": "demo release (8 repos, 11 artifacts, 4 FROM-scratch images): cold = fresh workspace, mirror cache "
                "and no images of this run on the engine; warm = the same command repeated at once; naive = "
                "bench/naive_demo.sh (clone, checkout, recipe, docker build, in sequence)",
        "artifacts": len(statuses),
        "cold_build_s": cold_s,
        "warm_noop_s": warm_s,
        # CPU of the orchestrator process and its children (git, recipes), not dockerd's.
        "cold_build_cpu_s": stats(cpu["cold"]),
        "warm_noop_cpu_s": stats(cpu["warm"]),
        "naive_script_cold_s": naive_s,
        "naive_script_rerun_s": rerun_s,
        "cold_over_warm": warm_vs_cold,
        "invoke_list_floor_s": floor_s,
        "warm_over_invoke_list": over_floor,
        "warm_over_invoke_list_per_repeat": [ratio(w, f) for w, f in zip(warm, floor, strict=True)],
        "naive_rerun_over_warm": ratio(rerun_s["median"], warm_s["median"]),
        "naive_cold_over_cold": ratio(naive_s["median"], cold_s["median"]),
        "warm_noop_breakdown": breakdown,
        "docker_layer_cache_hits_in_cold_builds": layer_hits,
        # Includes dockerd building for the run (it is no child of ours), and other users.
        "other_processes_cores": {k: stats(v, 2) for k, v in others.items() if v},
        "load_average": {"before": load_before, "after": load_average()},
        "targets": [
            target("warm no-op vs cold build --all (demo)", ">= 10x faster", warm_vs_cold,
                   warm_vs_cold is not None and warm_vs_cold >= 10),
            target("warm no-op build --all (demo)", "< 1 s", warm_s["median"], warm_s["median"] < 1.0),
            target("warm no-op build --all vs `invoke --list` (the floor)", "<= 2x", over_floor,
                   over_floor is not None and over_floor <= 2.0,
                   f"warm {warm_s['median']} s, invoke --list {floor_s['median']} s"),
        ],
    }
