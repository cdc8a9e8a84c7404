"""Render a bench/run.py JSON document as the Markdown tables of BENCHMARKS.md.

    .venv/bin/python bench/tables.py result.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _s(figure: dict[str, Any] | None, unit: str = " s") -> str:
    if not figure:
        return "n/a"
    return f"{figure['median']}{unit} ({figure['min']} – {figure['max']})"


def _kib(figure: dict[str, Any]) -> str:
    return f"{figure['median'] / 1024:,.0f} KiB"


def _targets(doc: dict[str, Any]) -> list[str]:
    lines = ["| scenario | target | wanted | measured | result |", "|---|---|---|---|---|"]
    for t in doc["targets"]:
        lines.append(f"| {t['scenario']} | {t['target']} | {t['wanted']} | {t['measured']} | "
                     f"{'**pass**' if t['pass'] else '**MISS**'} |")
    return lines


def _parallel(s: dict[str, Any]) -> list[str]:
    jobs = s["jobs"]
    return [
        "| | wall, median (min – max) | CPU of the run |", "|---|---|---|",
        f"| `--jobs 1` | {_s(s['jobs_1_wall_s'])} | {_s(s['jobs_1_cpu_s'])} |",
        f"| `--jobs {jobs}` | {_s(s[f'jobs_{jobs}_wall_s'])} | {_s(s[f'jobs_{jobs}_cpu_s'])} |",
        f"| speedup (medians) | **{s['speedup']}x** (ideal {s['ideal_speedup']}x) | |",
        f"| speedup (best runs) | {s['speedup_best_of_runs']}x | |",
        f"| speedup per interleaved pair | {', '.join(f'{x}x' for x in s['speedup_per_interleaved_pair'])} | |",
        f"| cores busy with other processes | {_s(s['other_processes_cores'], '')} | |",
    ]


def _demo(s: dict[str, Any]) -> list[str]:
    return [
        "| run | wall, median (min – max) | note |", "|---|---|---|",
        f"| orchestrator cold `build --all` | {_s(s['cold_build_s'])} | CPU {s['cold_build_cpu_s']['median']} s |",
        f"| orchestrator warm no-op `build --all` | **{_s(s['warm_noop_s'])}** | CPU "
        f"{s['warm_noop_cpu_s']['median']} s; all {s['artifacts']} artifacts `cached` |",
        f"| naive script, cold | {_s(s['naive_script_cold_s'])} | sequential, no cache |",
        f"| naive script, rerun | {_s(s['naive_script_rerun_s'])} | Docker layer cache warm |",
        f"| cold / warm | **{s['cold_over_warm']}x** | |",
        f"| `invoke --list` (the floor: Python, invoke, the task modules) | {_s(s.get('invoke_list_floor_s'))} | "
        "run right after each warm no-op |",
        f"| warm / floor | **{s.get('warm_over_invoke_list')}x** | per repeat: "
        f"{', '.join(f'{x}x' for x in s.get('warm_over_invoke_list_per_repeat', []))} |",
        f"| naive rerun / warm | {s['naive_rerun_over_warm']}x | |",
        f"| naive cold / orchestrator cold | {s['naive_cold_over_cold']}x | |",
        f"| cores busy with other processes | cold {_s(s['other_processes_cores'].get('cold'), '')}, warm "
        f"{_s(s['other_processes_cores'].get('warm'), '')} | cold includes dockerd building |",
    ]


def _breakdown(b: dict[str, Any]) -> list[str]:
    lines = ["| part of one warm no-op | seconds |", "|---|---|",
             f"| whole process (profiled run) | {b.get('wall_s')} |",
             f"| interpreter start + CLI imports | {b.get('interpreter_to_cli_imported_s')} |"]
    lines += [f"| {name} | {seconds} |" for name, seconds in b.get("stages_s", {}).items()]
    calls = b.get("calls", {})
    git = {k[4:]: v for k, v in calls.items() if k.startswith("git ")}
    lines.append(f"| git processes: {sum(git.values())} ({', '.join(f'{k} {v}' for k, v in git.items())}) | |")
    engine = b.get("engine_lookups", {})
    if "one_labelled_list_call_s" in engine:
        lines.append(f"| engine: one list call filtered by the cache-key label "
                     f"({engine['images_with_the_label_on_the_engine']} labelled images on the engine) | "
                     f"{_s(engine['one_labelled_list_call_s'], '')} |")
        lines.append(f"| engine: one inspection per image ({engine['images_of_the_release']} images) | "
                     f"{_s(engine['one_inspection_per_image_s'], '')} |")
    imports = b.get("imports", {})
    lines.append(f"| all imports (`-X importtime`, separate run) | {imports.get('total_s')} |")
    lines += [f"| &nbsp;&nbsp;import {name} | {seconds} |" for name, seconds in imports.get("top", {}).items()]
    return lines


def _fetch(s: dict[str, Any]) -> list[str]:
    return [
        "| operation | objects received | wall, median (min – max) |", "|---|---|---|",
        f"| `orchestrator fetch` (cold) | **{_kib(s['orchestrator_fetch_bytes'])}** "
        f"({s['orchestrator_fetch_count_objects'].get('in-pack', '?')} objects) | "
        f"{_s(s['orchestrator_fetch_wall_s'])} |",
        f"| `git clone --mirror` | {_kib(s['git_clone_mirror_bytes'])} "
        f"({s['git_clone_mirror_count_objects'].get('in-pack', '?')} objects) | {_s(s['git_clone_mirror_wall_s'])} |",
        f"| `git clone --depth 1 --branch v1.0.0` (reference) | {_kib(s['git_clone_depth1_bytes'])} | "
        f"{_s(s['git_clone_depth1_wall_s'])} |",
        f"| fetch / full clone | **{s['fetch_bytes_percent_of_full_clone']} %** of the bytes | "
        f"{s['fetch_time_over_full_clone']}x the time |",
    ]


def _peers(s: dict[str, Any]) -> list[str]:
    lines = ["| transport | tool | cold, median (min – max) | warm no-op | HTTP requests cold / warm |",
             "|---|---|---|---|---|"]
    for transport, r in s["results"].items():
        for tool in ("orchestrator", "west", "vcstool"):
            t = r[tool]
            requests = (f"{t['cold_http_requests']['median']} / {t['warm_http_requests']['median']}"
                        if transport == "https" else "–")
            lines.append(f"| {transport} | {tool} | {_s(t['cold_s'])} | {_s(t['warm_s'])} | {requests} |")
    lines += ["", "| transport | ratio | cold (of medians; per repeat) | warm |", "|---|---|---|---|"]
    for transport, r in s["results"].items():
        for pair in ("orchestrator/west", "orchestrator/vcstool", "west/vcstool"):
            cold, warm = r["cold_ratios"][pair], r["warm_ratios"][pair]
            lines.append(f"| {transport} | {pair} | **{cold['of_medians']}x**; {cold['per_repeat']} | "
                         f"**{warm['of_medians']}x**; {warm['per_repeat']} |")
    return lines


def _scale(s: dict[str, Any]) -> list[str]:
    lines = ["| repos (artifacts) | `manifest --json` wall | its peak RSS | `build --all --dry-run` wall | "
             "load+validate+plan | of which plan | process peak RSS |", "|---|---|---|---|---|---|---|"]
    for size, r in s["results"].items():
        lines.append(f"| {int(size):,} ({r['artifacts']:,}) | {_s(r['cli_manifest_json_wall_s'])} | "
                     f"{r['cli_manifest_json_peak_rss_mib']['median']} MiB | {_s(r.get('cli_build_dry_run_wall_s'))} | "
                     f"{_s(r['load_validate_plan_s'])} | "
                     f"{r['plan_s']['median']} s | {r['load_plan_process_peak_rss_mib']['median']} MiB |")
    g, c = s["growth_load_validate_plan"], s["growth_cli_manifest_json"]
    lines += ["", "| growth | load+validate+plan | `manifest --json` |", "|---|---|---|",
              f"| ms per repo at {', '.join(f'{n:,}' for n in s['sizes'])} | {g['per_repo_ms']} | "
              f"{c['per_repo_ms']} |",
              f"| per-repo ratio, largest / smallest | **{g['per_repo_ratio_largest_vs_smallest']}** | "
              f"{c['per_repo_ratio_largest_vs_smallest']} |",
              f"| log-log slope, two largest (1 = linear) | {g['loglog_slope_two_largest']} | "
              f"{c['loglog_slope_two_largest']} |"]
    return lines


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    out = [f"Run {doc['started']} – {doc['finished']}, `{doc['command']}`, project at "
           f"`{doc['project_revision']}`, {doc['repeats']} repeats; {m['cores']} cores, {m['cpu_model']}, "
           f"{m['ram_gib']} GiB; load average {doc['load_average_start']} → {doc['load_average_end']}.", ""]
    out += _targets(doc)
    sections = {"parallel": _parallel, "demo": _demo, "fetch": _fetch, "scale": _scale, "peers": _peers}
    for name, render_one in sections.items():
        if name in doc["scenarios"]:
            out += ["", f"#### {name}", "", *render_one(doc["scenarios"][name])]
            if name == "demo" and doc["scenarios"][name].get("warm_noop_breakdown"):
                out += ["", *_breakdown(doc["scenarios"][name]["warm_noop_breakdown"])]
    for name, error in doc.get("errors", {}).items():
        out += ["", f"#### {name}: could not run", "", "```", error, "```"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
