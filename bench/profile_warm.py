"""Where a warm no-op `build --all` spends its time.

    .venv/bin/python bench/profile_warm.py MANIFEST WORKSPACE [--cprofile FILE]

Runs the real `orchestrator build --all` in this interpreter, with timers wrapped
around the pipeline's stages and around every git process, and prints JSON. The
workspace must hold a finished build of the manifest, so that everything is cached.
scenario_demo.py also runs the command under ``python -X importtime`` (see
``import_costs``) to split start-up into the packages it loads.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import collections  # noqa: E402  (the clock starts before anything is imported)
import functools  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

_lock = threading.Lock()
stages: dict[str, float] = collections.defaultdict(float)
calls: collections.Counter[str] = collections.Counter()


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            with _lock:
                stages[name] += time.perf_counter() - started
                calls[name] += 1

    return wrapper


def _wrap(module: Any, attribute: str, name: str) -> None:
    # The product may be refactored under the bench: a missing hook is noted, not fatal.
    if hasattr(module, attribute):
        setattr(module, attribute, _timed(name, getattr(module, attribute)))
    else:
        calls[f"missing hook {module.__name__}.{attribute}"] += 1


def _git_wrapper(run: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(run)
    def wrapper(args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return run(args, **kwargs)
        finally:
            with _lock:
                stages["git processes (summed over threads)"] += time.perf_counter() - started
                calls[f"git {args[0]}"] += 1

    return wrapper


def phases(manifest: str, workspace: str, cprofile: str | None) -> dict[str, Any]:
    import orchestrator.engine.dockerpy
    import orchestrator.execute
    import orchestrator.gitcache
    import orchestrator.gitcmd
    import orchestrator.manifest
    import orchestrator.plan
    import orchestrator.release
    import orchestrator.report
    from orchestrator_cli import program

    imported = time.perf_counter()
    _wrap(orchestrator.manifest, "load", "load manifest")
    _wrap(orchestrator.plan, "make_plan", "plan")
    _wrap(orchestrator.release, "connect_docker", "connect to Docker")
    _wrap(orchestrator.release, "fetch_sources", "verify every pin (no checkout)")
    _wrap(orchestrator.release, "execute", "execute plan (cache lookups)")
    _wrap(orchestrator.report, "write_release", "write release.json + SHA256SUMS")
    _wrap(orchestrator.engine.dockerpy.Engine, "inspect_image", "docker inspect_image")
    _wrap(orchestrator.engine.dockerpy.Engine, "image_id", "docker image_id")
    git_run = _git_wrapper(orchestrator.gitcmd.run)
    orchestrator.gitcmd.run = git_run
    orchestrator.gitcache.run = git_run  # imported by name there
    profiler = None
    if cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    code = program.run(["build", "--all", "--quiet", "--manifest", manifest, "--workspace", workspace])
    finished = time.perf_counter()
    if profiler is not None and cprofile:
        profiler.disable()
        profiler.dump_stats(cprofile)
    return {
        "exit_code": code,
        "interpreter_to_cli_imported_s": round(imported - STARTED, 3),
        "cli_run_s": round(finished - started, 3),
        "stages_s": {name: round(seconds, 3) for name, seconds in stages.items()},
        "calls": dict(calls),
        "imported_docker_py": "docker" in sys.modules,
        "imported_gitpython": "git" in sys.modules,
    }


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_costs(stderr: str, top: int = 8) -> dict[str, Any]:
    """Parse ``-X importtime`` output: total seconds, and the costliest top-level imports."""
    roots: list[tuple[float, str]] = []
    total = 0.0
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) == 1:  # one space of indent: imported by the program itself
            seconds = int(match.group(2)) / 1e6
            total += seconds
            roots.append((seconds, match.group(4)))
    roots.sort(reverse=True)
    return {"total_s": round(total, 3), "top": {name: round(s, 3) for s, name in roots[:top]}}


def main(argv: list[str]) -> None:
    cprofile = None
    if "--cprofile" in argv:
        at = argv.index("--cprofile")
        cprofile = argv[at + 1]
        argv = argv[:at] + argv[at + 2:]
    result = phases(argv[0], argv[1], cprofile)
    sys.stdout.flush()
    sys.stderr.write("BENCH-PHASES " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
