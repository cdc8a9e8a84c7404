"""Load, validate and plan one manifest in this (fresh) interpreter; print the timings as JSON.

Run by scenario_scale.py as ``python bench/load_plan.py MANIFEST``: a new process per
measurement, so the peak RSS its parent reads belongs to this manifest alone.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from orchestrator.manifest import load
from orchestrator.plan import make_plan


def main(path: Path) -> None:
    # Imports are done above: the clock covers reading, validating and planning only.
    started = time.perf_counter()
    manifest = load(path)
    loaded = time.perf_counter()
    plan = make_plan(manifest, everything=True)
    planned = time.perf_counter()
    json.dump({
        "load_s": loaded - started,
        "plan_s": planned - loaded,
        "total_s": planned - started,
        "repos": len(manifest.repos),
        "artifacts": len(manifest.artifacts),
        "steps": len(plan.steps),
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, sys.stdout)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
