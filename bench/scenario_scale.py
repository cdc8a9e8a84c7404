"""Scenario 4: `manifest --json` and in-process load+validate+plan on big generated manifests."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import fixtures
from harness import ORCHESTRATOR, VENV_BIN, BenchError, clean_env, load_average, ratio, run_timed, stats, target

LOAD_PLAN = Path(__file__).resolve().parent / "load_plan.py"
TARGET_REPOS = 1000


def _growth(sizes: list[int], seconds: list[float]) -> dict[str, Any]:
    """Per-repo cost at the largest size over the smallest (1.0 = linear), and the
    log-log slope between the two largest sizes (1.0 = linear, 2.0 = quadratic)."""
    per_repo = [s / n for s, n in zip(seconds, sizes, strict=True)]
    slope = math.log(seconds[-1] / seconds[-2]) / math.log(sizes[-1] / sizes[-2]) if len(sizes) > 1 else None
    return {
        "per_repo_ms": [round(1000 * p, 3) for p in per_repo],
        "per_repo_ratio_largest_vs_smallest": ratio(per_repo[-1], per_repo[0]),
        "loglog_slope_two_largest": round(slope, 2) if slope is not None else None,
    }


def run(root: Path, *, repeats: int, sizes: list[int]) -> dict[str, Any]:
    env = clean_env(root / "home")
    results: dict[str, Any] = {}
    cli_medians: list[float] = []
    inproc_medians: list[float] = []
    load_before = load_average()
    for size in sizes:
        manifest = fixtures.write_yaml(root / f"manifest-{size}.yaml", fixtures.scale_manifest(size))
        cli_wall: list[float] = []
        cli_rss: list[float] = []
        dry_wall: list[float] = []
        total: list[float] = []
        load_s: list[float] = []
        plan_s: list[float] = []
        rss: list[float] = []
        facts: dict[str, Any] = {}
        for i in range(repeats):
            out = root / f"json-{size}-{i}.out"
            timed = run_timed([str(ORCHESTRATOR), "manifest", "--json", "--manifest", str(manifest)], env=env,
                              log=out, timeout=900)
            if not out.read_bytes().lstrip().startswith(b"{"):
                raise BenchError(f"`manifest --json` on {size} repos printed no JSON: {timed.output[:300]}")
            out.unlink()
            cli_wall.append(timed.wall)
            cli_rss.append(timed.maxrss_mib)
            timed = run_timed([str(ORCHESTRATOR), "build", "--all", "--dry-run", "--manifest", str(manifest)],
                              env=env, log=out, timeout=900)
            out.unlink()  # run_timed checked its exit status
            dry_wall.append(timed.wall)
            timed = run_timed([str(VENV_BIN / "python"), str(LOAD_PLAN), str(manifest)], env=env, timeout=900)
            facts = json.loads(timed.output)
            total.append(facts["total_s"])
            load_s.append(facts["load_s"])
            plan_s.append(facts["plan_s"])
            rss.append(timed.maxrss_mib)
        if facts["artifacts"] != 4 * size or facts["steps"] != 4 * size:
            raise BenchError(f"the {size}-repo manifest loaded as {facts['artifacts']} artifacts, "
                             f"{facts['steps']} steps; expected {4 * size}")
        results[str(size)] = {
            "artifacts": facts["artifacts"],
            "yaml_bytes": manifest.stat().st_size,
            "cli_manifest_json_wall_s": stats(cli_wall),
            "cli_manifest_json_peak_rss_mib": stats(cli_rss, 1),
            "cli_build_dry_run_wall_s": stats(dry_wall),
            "load_validate_plan_s": stats(total),
            "load_validate_s": stats(load_s),
            "plan_s": stats(plan_s),
            "load_plan_process_peak_rss_mib": stats(rss, 1),
        }
        cli_medians.append(results[str(size)]["cli_manifest_json_wall_s"]["median"])
        inproc_medians.append(results[str(size)]["load_validate_plan_s"]["median"])
        manifest.unlink()
    growth = _growth(sizes, inproc_medians)
    targets = []
    if str(TARGET_REPOS) in results:
        at = results[str(TARGET_REPOS)]
        seconds, mib = at["load_validate_plan_s"]["median"], at["load_plan_process_peak_rss_mib"]["median"]
        dry = at["cli_build_dry_run_wall_s"]["median"]
        targets += [
            target(f"{TARGET_REPOS}-repo manifest: load+validate+plan time", "< 2 s", seconds, seconds < 2.0),
            target(f"{TARGET_REPOS}-repo manifest: `build --all --dry-run`, whole command", "< 1 s", dry, dry < 1.0),
            target(f"{TARGET_REPOS}-repo manifest: peak memory (whole process)", "< 200 MB", mib, mib < 200,
                   "MiB; RSS of a fresh interpreter that imported the orchestrator and loaded+planned"),
        ]
    per_repo = growth["per_repo_ratio_largest_vs_smallest"]
    targets.append(target(f"cost grows linearly ({sizes[0]} -> {sizes[-1]} repos)",
                          "per-repo time ratio <= 1.5 (load+validate+plan)", per_repo,
                          per_repo is not None and per_repo <= 1.5))
    return {
        "what": "generated valid manifests with 4 artifacts per repo (binary, image staging it, python-package, "
                "library; every 10th repo requires the previous one's library): `orchestrator manifest --json` "
                "end to end, and load()+make_plan(everything=True) timed inside a fresh interpreter",
        "sizes": sizes,
        "results": results,
        "growth_load_validate_plan": growth,
        "growth_cli_manifest_json": _growth(sizes, cli_medians),
        "load_average": {"before": load_before, "after": load_average()},
        "targets": targets,
    }
