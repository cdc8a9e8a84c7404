"""The house style holds: orchestrator/ type-checks strictly and everything lints clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_orchestrator_passes_mypy_strict() -> None:
    result = run(str(BIN / "mypy"))  # files and strictness come from pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tree_passes_ruff() -> None:
    result = run(str(BIN / "ruff"), "check", "orchestrator", "orchestrator_cli", "tests", "bench", "tasks.py")
    assert result.returncode == 0, result.stdout + result.stderr
