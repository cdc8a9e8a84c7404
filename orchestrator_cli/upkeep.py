"""The tasks that look after the inputs and the workspace: `manifest` (show, schema, lock) and `clean`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from orchestrator.errors import InputError
from orchestrator.settings import Settings, parse_int
from orchestrator_cli import flags
from orchestrator_cli.exits import user_errors
from orchestrator_cli.parsing import OrchestratorTask
from orchestrator_cli.printing import emit, note, shown_path, size
from orchestrator_cli.stopping import writing

if TYPE_CHECKING:
    from orchestrator.model import Manifest


@task(
    klass=OrchestratorTask,
    help={
        "json": "Print the resolved manifest as JSON (defaults applied, images, dependencies, build order).",
        "schema": "Print the manifest's JSON Schema (the same as manifest.schema.json).",
        "lock": "Resolve every ref (asking the remotes) and write the commits into `commit:` fields.",
        "check": "With --lock: write nothing; exit 1 listing every repo that is unpinned or whose ref moved.",
        "manifest": flags.MANIFEST_HELP,
    }
)
def manifest(c: Context, json_: bool = False, schema: bool = False, lock: bool = False, check: bool = False,
             manifest: str = "") -> None:
    """Show the release manifest: a table, or --json, or the --schema; --lock pins it."""
    with user_errors(json_output=json_):
        flags.dry_run(c, "manifest")
        if schema:
            from orchestrator.schemafile import json_schema

            emit(json.dumps(json_schema(), indent=2))
            return
        from orchestrator import describe
        from orchestrator.manifest import load

        if check and not lock:
            raise InputError("--check goes with --lock", hint="manifest --lock --check")
        settings = flags.settings_from(manifest=manifest)
        loaded = load(settings.manifest)
        if lock:
            _lock(loaded, settings, check=check)
        elif json_:
            emit(json.dumps(describe.manifest_json(loaded), indent=2))
        else:
            emit(describe.manifest_table(loaded))


def _lock(loaded: Manifest, settings: Settings, *, check: bool) -> None:
    from orchestrator.fetching import fetch_options
    from orchestrator.lock import lock_manifest

    shown = flags.progress_from("", False, False)
    with shown.showing():  # resolving asks every remote: minutes on a real release
        locked = lock_manifest(loaded, fetch_options(settings, refresh=True), write=not check,
                               on_event=shown.fetch_event)
    for line in locked.lines():
        emit(line)
    emit(locked.verdict())



@task(
    klass=OrchestratorTask,
    help={
        "all": "Remove the whole workspace's .build/ and dist/ (every release, checkouts, logs), not one release.",
        "cache": "Also prune the shared mirror cache: leftovers of interrupted fetches, and mirrors of repos the "
                 "manifest does not name that no fetch (of any workspace) used for --unused-for days.",
        "unused-for": "With --cache: how many days a mirror the manifest does not name must have gone unused "
                      "to be removed (default 30; 0: any not in use right now).",
        "dry-run": "Show what would be removed; remove nothing.",
        "manifest": flags.MANIFEST_HELP,
        "workspace": "Directory holding .build/ and dist/ (default: the current directory).",
        "cache-dir": flags.CACHE_DIR_HELP,
        "wait": flags.WAIT_HELP,
    },
)
def clean(c: Context, all_: bool = False, cache: bool = False, dry_run: bool = False, manifest: str = "",
          workspace: str = "", cache_dir: str = "", wait: bool = False, unused_for: str = "") -> None:
    """Remove a release's outputs, logs and cache records (--all: the workspace; --cache: unused mirrors)."""
    with user_errors():
        from orchestrator import housekeeping, sources
        from orchestrator.manifest import load

        dry_run = dry_run or flags.dry_run(c, "clean", allowed=True)
        settings = flags.settings_from(manifest=manifest, workspace=workspace, cache_dir=cache_dir, wait=wait)
        if unused_for and not cache:
            raise InputError("--unused-for applies to the mirror cache only", hint="add --cache")
        unused_days = parse_int(unused_for, "--unused-for") if unused_for else None
        loaded = load(settings.manifest) if cache or not all_ else None
        roots = [settings.workspace]
        cache_root = settings.cache_dir or sources.default_cache_dir()
        if cache:
            roots.append(cache_root)

        def targets() -> list[tuple[Path, str]]:
            found = (housekeeping.workspace_paths(settings.workspace) if all_ or loaded is None
                     else housekeeping.release_paths(settings.workspace, loaded.release))
            if cache and loaded is not None:
                named = {sources.mirror_name(repo.url) for repo in loaded.repos.values()}
                found += housekeeping.cache_paths(cache_root, named)
            return found

        if dry_run:  # a reader: the lock is for the run that removes
            removed = housekeeping.remove(targets(), roots=roots, dry_run=True, unused_days=unused_days)
        else:
            with writing(settings, note):
                removed = housekeeping.remove(targets(), roots=roots, unused_days=unused_days)
        verb = "would remove" if dry_run else "removed"
        for item in removed:
            emit(f"kept {shown_path(item.path)}  ({item.what})" if item.kept else
                  f"{verb} {shown_path(item.path)}  ({item.what}, {size(item.size)})")
        removed = [item for item in removed if not item.kept]
        total = sum(item.size for item in removed)
        emit("nothing to remove" if not removed else
              f"{'would free' if dry_run else 'freed'} {size(total)} in {len(removed)} "
              f"{'place' if len(removed) == 1 else 'places'}")

