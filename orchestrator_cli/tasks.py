"""The invoke tasks. Thin: read flags, call one library function, print, map errors.

Every ``OrchestratorError`` becomes ``invoke.Exit`` with its exit code (2 bad input,
1 failed, 130 interrupted), so users see one message and never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from orchestrator.errors import EXIT_INTERRUPTED, OrchestratorError
from orchestrator.settings import Settings, load_settings, parse_int, parse_mirror
from orchestrator_cli.parsing import NamesOrAllTask
from orchestrator_cli.stopping import stopping, writing

if TYPE_CHECKING:
    from orchestrator.children import Children

_MANIFEST_HELP = "Manifest file (default: manifest.yaml; config `manifest`, env ORCHESTRATOR_MANIFEST)."
_WAIT_HELP = "If another run is writing to the workspace, wait for it instead of failing (env ORCHESTRATOR_WAIT)."


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors and Ctrl-C (SIGTERM, SIGHUP) into invoke exits with documented codes."""
    with stopping.installed():
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
    for key in ("offline", "wait"):
        if not flags.get(key):
            flags[key] = None  # a flag left off must not override the config's `offline: true`
    for key in ("manifest", "workspace", "cache_dir"):
        if flags.get(key):
            flags[key] = Path(flags[key]).expanduser()
        else:
            flags[key] = None
    return load_settings(flags)


def _note(line: str) -> None:
    """A progress line on stderr (stdout stays for results)."""
    sys.stderr.write(line.rstrip("\n") + "\n")


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


@task(
    help={
        "json": "Print the resolved manifest as JSON (defaults applied, images, dependencies, build order).",
        "schema": "Print the manifest's JSON Schema (the same as manifest.schema.json).",
        "lock": "Resolve every ref (asking the remotes) and write the commits into `commit:` fields.",
        "manifest": _MANIFEST_HELP,
    }
)
def manifest(c: Context, json_: bool = False, schema: bool = False, lock: bool = False, manifest: str = "") -> None:
    """Show the release manifest: a table, or --json, or the --schema; --lock pins it."""
    with user_errors():
        if schema:
            from orchestrator.schema import json_schema

            _emit(json.dumps(json_schema(), indent=2))
            return
        from orchestrator import describe
        from orchestrator.manifest import load

        settings = _settings(manifest=manifest)
        loaded = load(settings.manifest)
        if lock:
            _lock(loaded, settings)
        elif json_:
            _emit(json.dumps(describe.manifest_json(loaded), indent=2))
        else:
            _emit(describe.manifest_table(loaded))


def _lock(loaded: Any, settings: Settings) -> None:
    from dataclasses import replace

    from orchestrator import sources
    from orchestrator.lock import lock_file
    from orchestrator.release import fetch_options

    options = fetch_options(settings, refresh=True)
    # Locking asks where each ref points *now*: the old pins are what it replaces.
    unpinned = [replace(repo, commit=None) for repo in loaded.repos.values()]
    commits = sources.resolve(unpinned, options,
                              on_event=lambda repo, message: _note(f"[fetch] {repo}: {message}"))
    for name, repo in loaded.repos.items():
        new = commits[name]
        if repo.commit is None:
            _emit(f"{name}: {repo.ref} -> {new} (pinned)")
        elif repo.commit != new:
            _emit(f"{name}: {repo.ref} MOVED {repo.commit} -> {new} (pin updated)")
        else:
            _emit(f"{name}: {repo.ref} = {new} (unchanged)")
    changed = lock_file(settings.manifest, commits)
    _emit(f"{settings.manifest}: {'updated' if changed else 'already locked'}")


def _check_names(names: str) -> tuple[str, ...]:
    from orchestrator.errors import InputError
    from orchestrator.plan import split_names

    parsed = split_names(names or "")
    for name in parsed:
        if name.startswith("-"):
            raise InputError(f"unknown flag {name!r}", hint="`invoke --help build` lists the flags")
    return parsed


_BUILD_HELP = {
    "names": "Repos or artifacts, comma-separated (felix,calico/node). A repo means all its artifacts.",
    "all": "Build every artifact of the manifest.",
    "dry-run": "Print the plan (order, and what each step would run); fetch and build nothing.",
    "jobs": "Parallel workers (default: number of cores, at most 8).",
    "keep-going": "After a failure, keep building everything that does not depend on it.",
    "force": "Rebuild even when cached: --force (everything) or --force=NAMES (those repos/artifacts).",
    "offline": "Use only the mirror cache; fail listing the repos that are not cached.",
    "mirror": "FROM=TO URL prefix rewrite for git (repeatable), e.g. https://github.com/=file:///srv/gh/.",
    "manifest": _MANIFEST_HELP,
    "workspace": "Directory holding .build/ and dist/ (default: the current directory).",
    "wait": _WAIT_HELP,
}


def _run_build(settings: Settings, names: tuple[str, ...], everything: bool, keep_going: bool, children: Children,
               *, demo: bool = False, force: str | bool | None = None) -> None:
    from orchestrator.manifest import load
    from orchestrator.plan import make_plan, select
    from orchestrator.release import build_release
    from orchestrator_cli.display import Progress, summary

    loaded = load(settings.manifest)
    plan = make_plan(loaded, names, everything=everything)
    forced: frozenset[str] | bool = False
    if force is True:
        forced = True
    elif isinstance(force, str) and force:
        forced = frozenset(select(loaded, _check_names(force)))
    progress = Progress()
    with progress.showing():
        outcome = build_release(loaded, plan, settings, keep_going=keep_going, tolerate_missing_docker=demo,
                                on_event=progress, on_fetch=progress.fetch_event, force=forced, children=children)
    _emit(summary(outcome, settings.workspace))
    if outcome.docker_problem:
        skipped = [n for n, r in outcome.results.items() if r.status == "skipped" and "Docker" in (r.error or "")]
        sys.stderr.write("not built, no Docker engine: " + ", ".join(skipped) + "\n  "
                         + outcome.docker_problem.replace("\n", "\n  ") + "\n")
    if outcome.failed or not outcome.ok:
        raise Exit(f"error: {len(outcome.failed)} artifact(s) failed: "
                   + ", ".join(r.artifact for r in outcome.failed), 1)


@task(klass=NamesOrAllTask, iterable=["mirror"], optional=["force"], help=_BUILD_HELP)
def build(c: Context, names: str, all_: bool = False, dry_run: bool = False, jobs: str = "",
          keep_going: bool = False, force: str | None = None, offline: bool = False,
          mirror: list[str] | None = None, manifest: str = "", workspace: str = "", wait: bool = False) -> None:
    """Build artifacts with their dependencies: `build felix`, `build --all`."""
    with user_errors():
        from orchestrator import describe
        from orchestrator.manifest import load
        from orchestrator.plan import make_plan

        parsed = _check_names(names)
        settings = _settings(manifest=manifest, jobs=jobs, workspace=workspace, offline=offline,
                             mirrors=mirror or [], wait=wait)
        if dry_run:  # a reader: never takes the workspace lock
            _emit(describe.plan_text(make_plan(load(settings.manifest), parsed, everything=all_)))
            return
        with writing(settings, _note, commands=True) as children:
            _run_build(settings, parsed, all_, keep_going, children, force=force)


@task(
    klass=NamesOrAllTask,
    iterable=["mirror"],
    help={**{k: v for k, v in _BUILD_HELP.items() if k in ("names", "jobs", "offline", "mirror", "manifest",
                                                          "workspace", "wait")},
          "all": "Fetch every repository of the manifest.",
          "retries": "Extra tries for network steps, with backoff (default 2).",
          "cache-dir": "Mirror cache (default $XDG_CACHE_HOME/orchestrator/git; env ORCHESTRATOR_CACHE_DIR)."},
)
def fetch(c: Context, names: str, all_: bool = False, jobs: str = "", offline: bool = False,
          mirror: list[str] | None = None, retries: str = "", cache_dir: str = "", manifest: str = "",
          workspace: str = "", wait: bool = False) -> None:
    """Fetch repositories at their pinned commits into .build/src/: `fetch --all`."""
    with user_errors():
        from orchestrator.manifest import load
        from orchestrator.plan import make_plan
        from orchestrator.release import fetch_sources

        parsed = _check_names(names)
        settings = _settings(manifest=manifest, jobs=jobs, workspace=workspace, offline=offline,
                             mirrors=mirror or [], retries=retries, cache_dir=cache_dir, wait=wait)
        loaded = load(settings.manifest)
        plan = make_plan(loaded, parsed, everything=all_)
        with writing(settings, _note):
            checkouts = fetch_sources(loaded, plan, settings,
                                      lambda repo, message: _note(f"[fetch] {repo}: {message}"))
        for name, source in checkouts.items():
            _emit(f"{name:<20} {source.ref:<12} {source.commit}  {source.path}")


@task(optional=["force"], help={"jobs": _BUILD_HELP["jobs"], "keep-going": _BUILD_HELP["keep-going"],
            "force": _BUILD_HELP["force"], "wait": _WAIT_HELP,
            "workspace": "Directory for the demo's repositories, .build/ and dist/ (default: current directory)."})
def demo(c: Context, jobs: str = "", keep_going: bool = False, force: str | None = None,
         workspace: str = "", wait: bool = False) -> None:
    """Build the built-in demo release offline (local repos shaped like Calico's)."""
    with user_errors():
        from orchestrator.sandbox import create_demo

        base = _settings(workspace=workspace, jobs=jobs, wait=wait)
        with writing(base, _note, commands=True) as children:
            manifest_path = create_demo(base.build_dir / "demo")
            _emit(f"demo repositories and manifest: {manifest_path.parent}")
            settings = _settings(manifest=str(manifest_path), workspace=workspace, jobs=jobs, wait=wait)
            _run_build(settings, (), True, keep_going, children, demo=True, force=force)


@task(
    klass=NamesOrAllTask,
    help={
        "names": "Repos or artifacts whose images to push, comma-separated.",
        "all": "Push the images of every artifact of the release.",
        "registry": "Push under this registry instead of the manifest's (HOST[:PORT]/, ending in '/').",
        "retries": "Extra tries for transient registry errors, with backoff (default 2).",
        "manifest": _MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
        "wait": _WAIT_HELP,
    },
)
def publish(c: Context, names: str, all_: bool = False, registry: str = "", retries: str = "",
            manifest: str = "", workspace: str = "", wait: bool = False) -> None:
    """Push a built release's images, only if every selected artifact built."""
    with user_errors():
        from orchestrator.conformance import release_of
        from orchestrator.manifest import load
        from orchestrator.plan import select
        from orchestrator.publish import format_report, publish_release

        parsed = _check_names(names)
        settings = _settings(manifest=manifest, workspace=workspace, retries=retries, wait=wait)
        loaded = load(settings.manifest)
        selected = select(loaded, parsed, everything=all_)
        with writing(settings, _note) as children:
            stopping.second_is_graceful = True  # a second Ctrl-C stops waiting for the push in flight
            release_of(loaded, settings.dist_dir / loaded.release)  # the right release, before Docker is asked
            report = publish_release(
                settings.dist_dir / loaded.release, loaded, children.engine(), artifacts=selected,
                registry=registry or None, retries=settings.retries,
                log=_note,
            )
        _emit(format_report(report))


@task(
    help={
        "offline": "Check pins against the mirror cache instead of asking the remotes.",
        "manifest": _MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
    }
)
def verify(c: Context, offline: bool = False, manifest: str = "", workspace: str = "") -> None:
    """Re-check a built release: files, images, provenance, and every pin."""
    with user_errors():
        from orchestrator.conformance import release_of
        from orchestrator.errors import DockerUnavailableError
        from orchestrator.manifest import load
        from orchestrator.release import fetch_options
        from orchestrator.verify import format_report, resolve_pins, verify_release

        settings = _settings(manifest=manifest, workspace=workspace, offline=offline)
        loaded = load(settings.manifest)
        release_of(loaded, settings.dist_dir / loaded.release)  # the right release, before the network is asked
        engine = None
        try:
            from orchestrator.engine import Engine

            engine = Engine.from_env(timeout=60)
        except DockerUnavailableError as e:
            sys.stderr.write(f"no Docker engine, images will not be checked: {str(e).splitlines()[0]}\n")
        commits = resolve_pins(loaded, fetch_options(settings, refresh=True))
        report = verify_release(settings.dist_dir / loaded.release, loaded, engine=engine, commits=commits)
        _emit(format_report(report))
        if not report.ok:
            raise Exit(f"error: release {loaded.release} does not verify: {len(report.failures)} mismatch(es)", 1)


namespace = Collection(manifest, build, fetch, demo, publish, verify)
