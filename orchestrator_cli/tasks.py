"""The invoke tasks. Thin: read flags, call one library function, print, map errors.

Every ``OrchestratorError`` becomes ``invoke.Exit`` with its exit code (2 bad input,
1 failed, 130 interrupted), so users see one message and never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from invoke import Collection, Context, Exit, task

from orchestrator.errors import EXIT_INTERRUPTED, OrchestratorError
from orchestrator.settings import Settings, load_settings, parse_int, parse_mirror
from orchestrator_cli.parsing import NamesOrAllTask

_MANIFEST_HELP = "Manifest file (default: manifest.yaml; config `manifest`, env ORCHESTRATOR_MANIFEST)."


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors and Ctrl-C into invoke exits with documented codes."""
    try:
        yield
    except OrchestratorError as e:
        raise Exit(f"error: {e}", e.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", EXIT_INTERRUPTED) from None


def _settings(**flags: Any) -> Settings:
    if flags.get("jobs") not in (None, ""):
        flags["jobs"] = parse_int(flags["jobs"], "--jobs", minimum=1)
    else:
        flags["jobs"] = None
    if flags.get("retries") not in (None, ""):
        flags["retries"] = parse_int(flags["retries"], "--retries")
    else:
        flags["retries"] = None
    if "mirrors" in flags:
        flags["mirrors"] = tuple(parse_mirror(m, "--mirror") for m in flags["mirrors"] or ())
    if not flags.get("offline"):
        flags["offline"] = None  # a flag left off must not override the config's `offline: true`
    for key in ("manifest", "workspace", "cache_dir"):
        if flags.get(key):
            from pathlib import Path

            flags[key] = Path(flags[key]).expanduser()
        else:
            flags[key] = None
    return load_settings(flags)


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


@task(
    help={
        "json": "Print the resolved manifest as JSON (defaults applied, images, dependencies, build order).",
        "schema": "Print the manifest's JSON Schema (the same as manifest.schema.json).",
        "manifest": _MANIFEST_HELP,
    }
)
def manifest(c: Context, json_: bool = False, schema: bool = False, manifest: str = "") -> None:
    """Show the release manifest: a table, or --json, or the --schema."""
    with user_errors():
        if schema:
            from orchestrator.schema import json_schema

            _emit(json.dumps(json_schema(), indent=2))
            return
        from orchestrator import describe
        from orchestrator.manifest import load

        settings = _settings(manifest=manifest)
        loaded = load(settings.manifest)
        if json_:
            _emit(json.dumps(describe.manifest_json(loaded), indent=2))
        else:
            _emit(describe.manifest_table(loaded))


@task(
    klass=NamesOrAllTask,
    help={
        "names": "Repos or artifacts, comma-separated (felix,calico/node). A repo means all its artifacts.",
        "all": "Build every artifact of the manifest.",
        "dry-run": "Print the plan (order, and what each step would run); fetch and build nothing.",
        "jobs": "Parallel workers (default: number of cores).",
        "keep-going": "After a failure, keep building everything that does not depend on it.",
        "manifest": _MANIFEST_HELP,
        "workspace": "Directory holding .build/ and dist/ (default: the current directory).",
    },
)
def build(c: Context, names: str, all_: bool = False, dry_run: bool = False, jobs: str = "",
          keep_going: bool = False, manifest: str = "", workspace: str = "") -> None:
    """Build artifacts with their dependencies: `build felix`, `build --all`."""
    with user_errors():
        from orchestrator import describe
        from orchestrator.manifest import load
        from orchestrator.plan import make_plan, split_names

        settings = _settings(manifest=manifest, jobs=jobs, workspace=workspace)
        loaded = load(settings.manifest)
        plan = make_plan(loaded, split_names(names or ""), everything=all_)
        if dry_run:
            _emit(describe.plan_text(plan))
            return
        raise Exit(
            "error: building is not available in this version yet; use --dry-run to see the plan",
            1,
        )


namespace = Collection(manifest, build)
