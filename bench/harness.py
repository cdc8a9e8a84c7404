"""Measuring machinery shared by the scenarios: clean environments, timed child
processes with their own resource usage, summary statistics, machine facts, and
removal of the Docker images a run created."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ORCHESTRATOR = VENV_BIN / "orchestrator"
MEASURE = Path(__file__).resolve().parent / "measure.py"


class BenchError(Exception):
    """A measurement could not run at all (as opposed to running and missing its target)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timed:
    """One child process: wall seconds, CPU seconds, peak RSS (MiB), exit status, output tail,
    and how many cores everything else on the machine kept busy meanwhile (other users'
    jobs, and daemons such as dockerd, which do work *for* the child but are not its
    descendants)."""

    wall: float
    cpu: float
    maxrss_mib: float
    status: int
    output: str
    others_cores: float | None = None


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The whole environment of every child: nothing leaks in from the caller.

    HOME and XDG_CACHE_HOME point into the run's temp dir, so no git config, mirror
    cache or docker config of the user's is read or written.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "TMPDIR": str(home.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "TERM": "dumb",
    }
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    env.update(extra)
    return env


def run_timed(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None, log: Path | None = None,
              timeout: float = 1800.0, check: bool = True) -> Timed:
    """Run ``argv`` to completion (through measure.py) and return what it cost.

    Wall time, CPU and peak RSS are those of exactly this command and the descendants
    it waited for, read with ``os.wait4`` in measure.py; RUSAGE_CHILDREN here would mix
    in every child the bench ever ran.
    """
    sink = log or (Path(env["TMPDIR"]) / f".bench-out-{os.getpid()}.log")
    sink.parent.mkdir(parents=True, exist_ok=True)
    stats_file = sink.with_name(sink.name + ".stats.json")
    with sink.open("wb") as out:
        busy_before = _busy_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-I", "-S", str(MEASURE), str(stats_file), "--", *argv],
                                stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd, start_new_session=True)
        # The timer only fires on a hang; the group kill takes the command with it.
        killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            _, _, wrapper_usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        outer_wall = time.perf_counter() - started
        busy_after = _busy_seconds()
    proc.returncode = 0  # reaped by wait4 above
    text = sink.read_text(encoding="utf-8", errors="replace")
    if log is None:
        sink.unlink(missing_ok=True)
    try:
        measured = json.loads(stats_file.read_text(encoding="utf-8"))
        stats_file.unlink()
    except (OSError, ValueError):
        measured = {"wall": outer_wall, "cpu": 0.0, "maxrss_kib": 0, "status": -signal.SIGKILL}
    others = None
    if busy_before is not None and busy_after is not None and outer_wall > 0:
        ours = wrapper_usage.ru_utime + wrapper_usage.ru_stime  # the command's CPU plus the wrapper's
        others = max(0.0, (busy_after - busy_before - ours) / outer_wall)
    timed = Timed(wall=measured["wall"], cpu=measured["cpu"], maxrss_mib=measured["maxrss_kib"] / 1024,
                  status=measured["status"], output=text[-3000:], others_cores=others)
    if check and timed.status != 0:
        shown = " ".join(str(a) for a in argv)
        raise BenchError(f"`{shown}` exited with {timed.status} after {timed.wall:.1f}s:\n{timed.output[-1500:]}")
    return timed


def stats(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, min and max of ``values``, plus the values themselves (in run order)."""
    def rounded(value: float) -> float | int:
        return round(value, digits) if digits else int(round(value))

    return {
        "median": rounded(statistics.median(values)),
        "min": rounded(min(values)),
        "max": rounded(max(values)),
        "runs": [rounded(v) for v in values],
    }


def ratio(numerator: float, denominator: float, digits: int = 2) -> float | None:
    return round(numerator / denominator, digits) if denominator > 0 else None


def target(name: str, wanted: str, measured: float | None, ok: bool, note: str = "") -> dict[str, Any]:
    """One target line of the report: reported, never asserted."""
    entry: dict[str, Any] = {"target": name, "wanted": wanted, "measured": measured, "pass": bool(ok)}
    if note:
        entry["note"] = note
    return entry


def repeat(times: int, measure: Callable[[int], float]) -> list[float]:
    return [measure(i) for i in range(times)]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _first_line(argv: Sequence[str]) -> str | None:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": cores(),
        "cpu_model": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git": _first_line(["git", "--version"]),
        "docker_server": _first_line(["docker", "version", "--format", "{{.Server.Version}}"]),
        "docker_client": _first_line(["docker", "version", "--format", "{{.Client.Version}}"]),
    }


def docker_available() -> str | None:
    """None when an engine answers, else why not."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                            timeout=30, check=False)
    return None if result.returncode == 0 else f"no Docker engine answers: {result.stderr.strip()[:300]}"


def remove_images(*, ref_prefixes: Sequence[str], label_prefixes: Mapping[str, str]) -> int:
    """Remove every image whose reference starts with one of ``ref_prefixes`` or whose
    label (key -> value prefix) matches; returns how many were removed.

    Only images this run made match (the prefixes hold the run's id or temp dir), so
    other users' images on the same engine are never touched.
    """
    listing = subprocess.run(["docker", "image", "ls", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}"],
                             capture_output=True, text=True, check=False)
    if listing.returncode != 0:
        return 0
    doomed: set[str] = set()
    ids: list[str] = []
    for line in listing.stdout.splitlines():
        image_id, _, repository = line.partition(" ")
        ids.append(image_id)
        if any(repository.startswith(p) for p in ref_prefixes):
            doomed.add(image_id)
    unique_ids = sorted(set(ids) - doomed)
    fmt = "{{.Id}}" + "".join(f" {{{{index .Config.Labels {key!r}}}}}".replace("'", '"') for key in label_prefixes)
    for start in range(0, len(unique_ids), 200):
        inspect = subprocess.run(["docker", "image", "inspect", "--format", fmt, *unique_ids[start:start + 200]],
                                 capture_output=True, text=True, check=False)
        for line in inspect.stdout.splitlines():
            image_id, *values = line.split(" ")
            if any(value.startswith(prefix) for value, prefix in zip(values, label_prefixes.values(), strict=False)):
                doomed.add(image_id)
    if doomed:
        subprocess.run(["docker", "image", "rm", "-f", *sorted(doomed)], capture_output=True, check=False)
    return len(doomed)
