"""Benchmarks for issue #5: run every scenario, print one JSON document.

    .venv/bin/python bench/run.py [--quick] [--out FILE] [--only NAMES] [--repeats N] [--keep]

Scenarios (see bench/README.md and BENCHMARKS.md): parallel, demo, fetch, scale, shared.
Fixtures are generated in a temp dir; nothing touches the network. Targets are
reported, never asserted: the exit code is 0 when every scenario ran, 1 when one could
not run at all (the JSON still holds the others, and "errors" says why).
"""

from __future__ import annotations

import argparse
import datetime
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import scenario_demo
import scenario_fetch
import scenario_parallel
import scenario_peers
import scenario_scale
import scenario_shared
from harness import ORCHESTRATOR, REPO_ROOT, BenchError, load_average, machine, remove_images

SCENARIOS = ("parallel", "demo", "fetch", "scale", "shared", "peers")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 repeats, 4 CPU repos, manifests up to 2,000 repos")
    parser.add_argument("--repeats", type=int, help="measurements per figure (default 5, --quick 2)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated subset of: "
                        + ", ".join(SCENARIOS))
    parser.add_argument("--out", type=Path, help="also write the JSON document to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, fixtures) for inspection")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _project_revision() -> str | None:
    result = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() or None


def _say(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    args = _parse(argv)
    if not ORCHESTRATOR.exists():
        sys.stderr.write(f"error: {ORCHESTRATOR} not found; run with the project's venv: "
                         ".venv/bin/python bench/run.py\n")
        return 2
    repeats = args.repeats or (2 if args.quick else 5)
    selected = [name for name in SCENARIOS if name in args.only.split(",")]
    run_id = secrets.token_hex(4)
    root = Path(tempfile.mkdtemp(prefix=f"orchestrator-bench-{run_id}-"))
    plans: dict[str, Callable[[Path], dict[str, Any]]] = {
        "parallel": lambda d: scenario_parallel.run(d, repeats=repeats, repos=4 if args.quick else 8),
        "demo": lambda d: scenario_demo.run(d, repeats=repeats, run_id=run_id),
        "fetch": lambda d: scenario_fetch.run(d, repeats=repeats, commits=5000),
        "scale": lambda d: scenario_scale.run(d, repeats=repeats,
                                              sizes=[100, 1000, 2000] if args.quick else [100, 1000, 5000]),
        "shared": lambda d: scenario_shared.run(d, repeats=repeats, artifacts=20 if args.quick else 40,
                                                burn=0.25 if args.quick else 0.5, run_id=run_id),
        "peers": lambda d: scenario_peers.run(d, repeats=repeats, quick=args.quick),
    }
    document: dict[str, Any] = {
        "benchmark": "release-orchestrator issue #5",
        "command": " ".join([".venv/bin/python", "bench/run.py", *argv]),
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "project_revision": _project_revision(),
        "quick": args.quick,
        "repeats": repeats,
        "machine": machine(),
        "load_average_start": load_average(),
        "scenarios": {},
        "errors": {},
    }
    try:
        for name in selected:
            _say(f"{name}: running ({repeats} repeats)")
            started = time.perf_counter()
            folder = root / name
            folder.mkdir()
            try:
                document["scenarios"][name] = plans[name](folder)
            except BenchError as e:
                document["errors"][name] = str(e)
            except Exception as e:  # one broken scenario must not hide the others' figures
                document["errors"][name] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"
            _say(f"{name}: {'FAILED to run' if name in document['errors'] else 'done'} "
                 f"in {time.perf_counter() - started:.0f}s")
    finally:
        # The demo scenario removes its images itself; this catches an interrupted run.
        remove_images(ref_prefixes=(f"orchestrator-bench-{run_id}",),
                      label_prefixes={"io.github.release-orchestrator.bench-run": run_id,
                                      "org.opencontainers.image.source": root.as_uri()})
        if args.keep:
            _say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    targets = [t | {"scenario": name} for name, s in document["scenarios"].items() for t in s.get("targets", [])]
    document["finished"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document["load_average_end"] = load_average()
    document["targets"] = targets
    document["summary"] = {"targets_passed": sum(t["pass"] for t in targets), "targets_total": len(targets),
                           "scenarios_failed_to_run": sorted(document["errors"])}
    text = json.dumps(document, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    for name, error in document["errors"].items():
        sys.stderr.write(f"error: scenario {name} could not run: {error.splitlines()[0]}\n")
    return 1 if document["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
