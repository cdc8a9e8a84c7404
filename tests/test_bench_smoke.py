"""The benchmark script still runs and prints its JSON (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_scale_scenario_runs_and_reports_every_target_as_json() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench/run.py"), "--quick", "--only", "scale", "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == {}
    names = {t["target"] for t in report["targets"]}
    assert any("load+validate+plan" in name for name in names)
    assert all(isinstance(t["pass"], bool) and t["measured"] is not None for t in report["targets"])
