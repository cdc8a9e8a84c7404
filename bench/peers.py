"""The peer tools of scenario_peers: west and vcstool, installed from PyPI into a venv of
their own (never the project's), and how each one fetches a workspace.

The venv lives under the checkout's ``.build/bench-peers/`` and is reused while
``peers-requirements.txt`` is unchanged (a stamp holds its sha256), so only the first
run needs PyPI.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from harness import REPO_ROOT, BenchError

REQUIREMENTS = Path(__file__).resolve().parent / "peers-requirements.txt"
VENV = REPO_ROOT / ".build" / "bench-peers" / "venv"


def ensure_venv() -> dict[str, str]:
    """The peers' venv, made or updated as needed: their executables and versions."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".bench-peers-installed"
    if not (stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == wanted):
        VENV.parent.mkdir(parents=True, exist_ok=True)
        steps = [[sys.executable, "-m", "venv", "--clear", str(VENV)],
                 [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "-r", str(REQUIREMENTS)]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BenchError(f"could not install the peer tools (`{' '.join(step)}` exited "
                                 f"{done.returncode}; PyPI is needed once):\n{done.stderr[-1500:]}")
        stamp.write_text(wanted + "\n", encoding="utf-8")
    tools = {"west": str(VENV / "bin" / "west"), "vcs": str(VENV / "bin" / "vcs")}
    versions = {}
    for name, program in tools.items():
        done = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
        versions[name] = (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"
    return {**tools, "west_version": versions["west"], "vcs_version": versions["vcs"]}


def heads(workspace: Path, names: list[str], env: Mapping[str, str]) -> dict[str, str]:
    """The commit each checkout of ``workspace`` is at ("" when there is none)."""
    found = {}
    for name in names:
        done = subprocess.run(["git", "-C", str(workspace / name), "rev-parse", "HEAD"], capture_output=True,
                              text=True, env=dict(env), check=False)
        found[name] = done.stdout.strip() if done.returncode == 0 else ""
    return found
