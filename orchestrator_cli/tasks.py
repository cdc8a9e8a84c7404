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

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from orchestrator.errors import EXIT_INTERRUPTED, InputError, Interrupted, OrchestratorError
from orchestrator.settings import Settings, load_settings, parse_int, parse_mirror
from orchestrator_cli.parsing import OrchestratorCollection, OrchestratorTask
from orchestrator_cli.stopping import stopping, writing

if TYPE_CHECKING:
    from orchestrator.children import Children
    from orchestrator_cli.display import Progress

_RELEASE_DIR_HELP = ("A release directory (dist/<release>) to work on; without --manifest, the manifest its "
                     "release.json names is used.")
_WAIT_HELP = "If another run is writing to the workspace, wait for it instead of failing (env ORCHESTRATOR_WAIT)."
_MANIFEST_HELP = "Manifest file (default: manifest.yaml; config `manifest`, env ORCHESTRATOR_MANIFEST)."


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


def _release(settings: Settings, manifest_flag: str, release_dir: str) -> tuple[Any, Path]:
    """The manifest and release directory a reading task works on.

    ``--release-dir`` names a release directory; without ``--manifest`` the manifest it
    was built from is the one its record names (said on stderr). Either way the record
    must have been built from that manifest (sha256), checked before anything else.
    """
    from orchestrator import record
    from orchestrator.conformance import release_of
    from orchestrator.manifest import load
    from orchestrator.report import recorded_manifest

    if not release_dir:
        loaded = load(settings.manifest)
        directory = settings.dist_dir / loaded.release
        release_of(loaded, directory)
        return loaded, directory
    directory = Path(release_dir).expanduser()
    if manifest_flag or settings.manifest != Settings().manifest:
        loaded = load(settings.manifest)
    else:
        recorded = recorded_manifest(directory, record.read(directory).manifest.path)
        _note(f"using manifest {_shown_path(recorded)} (recorded in {_shown_path(directory / record.FILENAME)})")
        loaded = load(recorded)
    release_of(loaded, directory)
    return loaded, directory


def _note(line: str) -> None:
    """A progress line on stderr (stdout stays for results)."""
    sys.stderr.write(line.rstrip("\n") + "\n")


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


@task(
    klass=OrchestratorTask,
    help={
        "json": "Print the resolved manifest as JSON (defaults applied, images, dependencies, build order).",
        "schema": "Print the manifest's JSON Schema (the same as manifest.schema.json).",
        "lock": "Resolve every ref (asking the remotes) and write the commits into `commit:` fields.",
        "check": "With --lock: write nothing; exit 1 listing every repo that is unpinned or whose ref moved.",
        "manifest": _MANIFEST_HELP,
    }
)
def manifest(c: Context, json_: bool = False, schema: bool = False, lock: bool = False, check: bool = False,
             manifest: str = "") -> None:
    """Show the release manifest: a table, or --json, or the --schema; --lock pins it."""
    with user_errors():
        _dry_run(c, "manifest")
        if schema:
            from orchestrator.schema import json_schema

            _emit(json.dumps(json_schema(), indent=2))
            return
        from orchestrator import describe
        from orchestrator.manifest import load

        if check and not lock:
            raise InputError("--check goes with --lock", hint="manifest --lock --check")
        settings = _settings(manifest=manifest)
        loaded = load(settings.manifest)
        if lock:
            _lock(loaded, settings, check=check)
        elif json_:
            _emit(json.dumps(describe.manifest_json(loaded), indent=2))
        else:
            _emit(describe.manifest_table(loaded))


def _lock(loaded: Any, settings: Settings, *, check: bool) -> None:
    from orchestrator.lock import lock_manifest
    from orchestrator.release import fetch_options

    shown = _progress("", False, False)
    with shown.showing():  # resolving asks every remote: minutes on a real release
        changes, changed = lock_manifest(loaded, fetch_options(settings, refresh=True), write=not check,
                                         on_event=shown.fetch_event)
    for change in changes:
        if change.state == "unpinned":
            _emit(f"{change.repo}: {change.ref} -> {change.now} ({'unpinned' if check else 'pinned'})")
        elif change.state == "moved":
            _emit(f"{change.repo}: {change.ref} MOVED {change.pinned} -> {change.now}"
                  + ("" if check else " (pin updated)"))
        else:
            _emit(f"{change.repo}: {change.ref} = {change.now} (unchanged)")
    stale = [change for change in changes if change.state != "unchanged"]
    if check:
        if stale:
            raise Exit(f"error: {len(stale)} of {len(changes)} repos are not pinned at their ref's commit: "
                       + ", ".join(f"{c.repo} ({c.state})" for c in stale)
                       + f"\n  hint: run `manifest --lock` to write the pins into {settings.manifest}", 1)
        _emit(f"{settings.manifest}: every pin matches its ref")
        return
    _emit(f"{settings.manifest}: {'updated' if changed else 'already locked'}")


def _check_names(names: str | None) -> tuple[str, ...]:
    from orchestrator.plan import split_names

    return split_names(names or "")


def _names_or_all(task_name: str, names: str | None, everything: bool) -> tuple[str, ...]:
    """The names given, after refusing neither-names-nor---all (both forms shown)."""
    parsed = _check_names(names)
    if not parsed and not everything:
        raise InputError(f"{task_name}: name what to {task_name}, or pass --all",
                         hint=f"`{task_name} felix calico/node` (repos or artifacts) or `{task_name} --all`")
    return parsed


def _dry_run(c: Context, task_name: str, *, allowed: bool = False) -> bool:
    """invoke's own --dry (`invoke --dry build`) means --dry-run for the tasks that have one
    (``allowed``), and is refused elsewhere: invoke's meaning (print shell commands instead of
    running them) does not apply to our tasks."""
    dry = bool(c.config.get("run", {}).get("dry", False))
    if dry and not allowed:
        raise InputError(f"invoke's --dry does not apply to {task_name}",
                         hint="drop --dry; build and clean have a dry run (--dry-run)")
    return dry


_OUTPUT_HELP = {
    "progress": "How to show progress: auto (a live table on a terminal, else plain), tty, or plain lines.",
    "quiet": "Show no progress; print only the result.",
    "verbose": "Also stream each running step's log as it is written, prefixed with its name.",
    "json": "Print the result as one JSON document on stdout (progress still goes to stderr).",
}
_BUILD_HELP = {
    "names": "Repos or artifacts (felix calico/node, or felix,calico/node). A repo means all its artifacts.",
    "all": "Build every artifact of the manifest.",
    "dry-run": "Print the plan (order, and what each step would run); fetch and build nothing.",
    "jobs": "Parallel workers (default: number of cores, at most 8).",
    "keep-going": "After a failure, keep building everything that does not depend on it.",
    "force": "Rebuild even when cached: --force (everything) or --force=NAMES (those repos/artifacts).",
    "offline": "Use only the mirror cache; fail listing the repos that are not cached.",
    "mirror": "FROM=TO URL prefix rewrite for git, e.g. https://github.com/=file:///srv/gh/.",
    "manifest": _MANIFEST_HELP,
    "workspace": "Directory holding .build/ and dist/ (default: the current directory).",
    "wait": _WAIT_HELP,
    **_OUTPUT_HELP,
}


def _progress(progress: str, quiet: bool, verbose: bool) -> Progress:
    from orchestrator_cli.display import MODES, Progress

    mode = progress or "auto"
    if mode not in MODES:
        raise InputError(f"--progress {progress!r} is not a progress mode", hint="use auto, tty or plain")
    if quiet and verbose:
        raise InputError("--quiet and --verbose contradict each other", hint="give one of them")
    return Progress(mode, quiet=quiet, verbose=verbose)


def _emit_json(data: Any) -> None:
    _emit(json.dumps(data, indent=2))


def _run_build(settings: Settings, names: tuple[str, ...], everything: bool, keep_going: bool, progress: Progress,
               children: Children, *, json_: bool = False, demo: bool = False,
               force: str | bool | None = None) -> None:
    from orchestrator.manifest import load
    from orchestrator.plan import make_plan, select
    from orchestrator.release import build_release
    from orchestrator_cli.display import summary

    loaded = load(settings.manifest)
    plan = make_plan(loaded, names, everything=everything)
    forced: frozenset[str] | bool = False
    if force is True:
        forced = True
    elif isinstance(force, str) and force:
        forced = frozenset(select(loaded, _check_names(force)))
    with progress.showing():
        outcome = build_release(loaded, plan, settings, keep_going=keep_going, tolerate_missing_docker=demo,
                                on_event=progress, on_fetch=progress.fetch_event, force=forced,
                                on_log=progress.log_line, children=children)
    if json_:
        from orchestrator_cli.results import build_json

        _emit_json(build_json(outcome))
    else:
        _emit(summary(outcome, table_too=not progress.quiet))
    if outcome.docker_problem and not progress.quiet:
        skipped = [n for n, r in outcome.results.items() if r.status == "skipped" and "Docker" in (r.error or "")]
        _note("not built, no Docker engine: " + ", ".join(skipped) + "\n  "
              + outcome.docker_problem.replace("\n", "\n  "))
    if outcome.failed or not outcome.ok:
        raise Exit(f"error: {len(outcome.failed)} artifact(s) failed: "
                   + ", ".join(r.artifact for r in outcome.failed), 1)


@task(klass=OrchestratorTask, positional=["names"], iterable=["mirror"], optional=["force"], help=_BUILD_HELP)
def build(c: Context, names: str | None = None, all_: bool = False, dry_run: bool = False, jobs: str = "",
          keep_going: bool = False, force: str | None = None, offline: bool = False,
          mirror: list[str] | None = None, manifest: str = "", workspace: str = "", wait: bool = False,
          progress: str = "", quiet: bool = False, verbose: bool = False, json_: bool = False) -> None:
    """Build artifacts with their dependencies: `build felix`, `build --all`."""
    with user_errors():
        from orchestrator import describe
        from orchestrator.manifest import load
        from orchestrator.plan import make_plan

        parsed = _names_or_all("build", names, all_)
        dry_run = dry_run or _dry_run(c, "build", allowed=True)
        shown = _progress(progress, quiet, verbose)
        settings = _settings(manifest=manifest, jobs=jobs, workspace=workspace, offline=offline,
                             mirrors=mirror or [], wait=wait)
        if dry_run:  # a reader: never takes the workspace lock
            plan = make_plan(load(settings.manifest), parsed, everything=all_)
            if json_:
                _emit_json(describe.plan_json(plan))
            else:
                _emit(describe.plan_text(plan))
            return
        with writing(settings, shown.note, commands=True) as children:
            _run_build(settings, parsed, all_, keep_going, shown, children, json_=json_, force=force)


@task(
    klass=OrchestratorTask,
    positional=["names"],
    iterable=["mirror"],
    help={**{k: v for k, v in _BUILD_HELP.items() if k in ("names", "jobs", "offline", "mirror", "manifest",
                                                          "workspace", "wait", *_OUTPUT_HELP)},
          "all": "Fetch every repository of the manifest.",
          "retries": "Extra tries for network steps, with backoff (default 2).",
          "cache-dir": "Mirror cache (default $XDG_CACHE_HOME/orchestrator/git; env ORCHESTRATOR_CACHE_DIR)."},
)
def fetch(c: Context, names: str | None = None, all_: bool = False, jobs: str = "", offline: bool = False,
          mirror: list[str] | None = None, retries: str = "", cache_dir: str = "", manifest: str = "",
          workspace: str = "", wait: bool = False, progress: str = "", quiet: bool = False, verbose: bool = False,
          json_: bool = False) -> None:
    """Fetch repositories at their pinned commits into .build/src/: `fetch --all`."""
    with user_errors():
        from orchestrator.manifest import load
        from orchestrator.plan import make_plan
        from orchestrator.release import fetch_sources

        _dry_run(c, "fetch")
        parsed = _names_or_all("fetch", names, all_)
        shown = _progress(progress, quiet, verbose)
        settings = _settings(manifest=manifest, jobs=jobs, workspace=workspace, offline=offline,
                             mirrors=mirror or [], retries=retries, cache_dir=cache_dir, wait=wait)
        loaded = load(settings.manifest)
        plan = make_plan(loaded, parsed, everything=all_)
        with writing(settings, shown.note), shown.showing():
            checkouts = fetch_sources(loaded, plan, settings, shown.fetch_event)
        if json_:
            from orchestrator_cli.results import fetch_json

            _emit_json(fetch_json(checkouts))
            return
        for name, source in checkouts.items():
            _emit(f"{name:<20} {source.ref:<12} {source.commit}  {_shown_path(source.path)}")


@task(klass=OrchestratorTask, optional=["force"],
      help={"jobs": _BUILD_HELP["jobs"], "keep-going": _BUILD_HELP["keep-going"], "force": _BUILD_HELP["force"],
            "registry": "Image prefix of the demo's images (default orchestrator-demo.invalid/, which never "
                        "resolves); HOST[:PORT]/ ending in '/'.",
            "workspace": "Directory for the demo's repositories, .build/ and dist/ (default: current directory).",
            "wait": _WAIT_HELP, **_OUTPUT_HELP})
def demo(c: Context, jobs: str = "", keep_going: bool = False, force: str | None = None, registry: str = "",
         workspace: str = "", wait: bool = False, progress: str = "", quiet: bool = False, verbose: bool = False,
         json_: bool = False) -> None:
    """Build the built-in demo release offline (local repos shaped like Calico's)."""
    with user_errors():
        from orchestrator.sandbox import DEMO_REGISTRY, create_demo

        _dry_run(c, "demo")
        shown = _progress(progress, quiet, verbose)
        prefix = _registry_prefix(registry or DEMO_REGISTRY)
        base = _settings(workspace=workspace, jobs=jobs, wait=wait)
        with writing(base, shown.note, commands=True) as children:
            manifest_path = create_demo(base.build_dir / "demo", registry=prefix)
            shown.note(f"demo repositories and manifest: {_shown_path(manifest_path.parent)}")
            settings = _settings(manifest=str(manifest_path), workspace=workspace, jobs=jobs, wait=wait)
            try:
                _run_build(settings, (), True, keep_going, shown, children, json_=json_, demo=True, force=force)
            except (Interrupted, KeyboardInterrupt):
                raise  # nothing to work on: a stopped run leaves a release that says "building"
            except BaseException:
                if not json_ and not quiet:  # a failure: the commands help to look at it
                    _emit(_next_steps(manifest_path, workspace))
                raise
            if not json_ and not quiet:
                _emit(_next_steps(manifest_path, workspace))


def _registry_prefix(value: str) -> str:
    from orchestrator.imageref import registry_problem

    if problem := registry_problem(value):
        raise InputError(f"--registry {value!r} cannot start image names: {problem}",
                         hint="give HOST[:PORT]/ with the trailing '/', e.g. 127.0.0.1:5000/")
    return value


def _program() -> str:
    """How the user ran us: `invoke` (in a checkout) or the `orchestrator` script."""
    return "invoke" if Path(sys.argv[0]).name in ("invoke", "inv") else "orchestrator"


def _runnable() -> str:
    """How to run this program again from the current directory: its name when that is
    what PATH finds (an activated .venv), otherwise its path (`scripts/demo` runs
    .venv/bin/invoke, and no `invoke` may be on PATH, or another one)."""
    import shlex
    import shutil

    name, ours = _program(), Path(sys.argv[0])
    found = shutil.which(name)
    if not ours.is_file() or (found is not None and Path(found).resolve() == ours.resolve()):
        return name
    return shlex.quote(_shown_path(ours))


def _shown_path(path: Path) -> str:
    """``path`` as short as it can be from the current directory."""
    import os

    relative = os.path.relpath(path.absolute())
    return relative if not relative.startswith("..") else str(path.absolute())


def _next_steps(manifest_path: Path, workspace: str) -> str:
    """The commands that act on the demo release, ready to paste."""
    import shlex

    where = f" -m {shlex.quote(_shown_path(manifest_path))}"
    if workspace:
        where += f" -w {shlex.quote(workspace)}"
    run = _runnable()
    steps = [
        (f"{run} build felix{where}", "rebuild one artifact (and what it needs); cached ones are kept"),
        (f"{run} verify --offline{where}", "re-check the release: files, images, provenance, pins"),
        (f"{run} publish --all{where} -r 127.0.0.1:5000/", "push its images to a local registry"),
    ]
    width = max(len(command) for command, _ in steps)
    return "\nwork on the demo release with:\n" + "\n".join(
        f"  {command:<{width}}  # {why}" for command, why in steps)


@task(
    klass=OrchestratorTask,
    positional=["names"],
    help={
        "names": "Repos or artifacts whose images to push.",
        "all": "Push the images of every artifact of the release.",
        "registry": "Push under this registry instead of the manifest's (HOST[:PORT]/, ending in '/').",
        "retries": "Extra tries for transient registry errors, with backoff (default 2).",
        "manifest": _MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
        "release-dir": _RELEASE_DIR_HELP,
        "wait": _WAIT_HELP,
        **_OUTPUT_HELP,
    },
)
def publish(c: Context, names: str | None = None, all_: bool = False, registry: str = "", retries: str = "",
            manifest: str = "", workspace: str = "", release_dir: str = "", wait: bool = False, progress: str = "",
            quiet: bool = False, verbose: bool = False, json_: bool = False) -> None:
    """Push a built release's images, only if every selected artifact built."""
    with user_errors():
        from orchestrator.plan import select
        from orchestrator.publish import format_report, publish_release

        _dry_run(c, "publish")
        parsed = _names_or_all("publish", names, all_)
        shown = _progress(progress, quiet, verbose)
        settings = _settings(manifest=manifest, workspace=workspace, retries=retries, wait=wait)
        with writing(settings, shown.note) as children, shown.showing():
            stopping.second_is_graceful = True  # a second Ctrl-C stops waiting for the push in flight
            loaded, directory = _release(settings, manifest, release_dir)  # the right release, before Docker
            selected = select(loaded, parsed, everything=all_)
            report = publish_release(
                directory, loaded, children.engine(), artifacts=selected,
                registry=registry or None, retries=settings.retries,
                log=shown.push_line, on_bytes=shown.push_bytes,
            )
        if json_:
            from orchestrator_cli.results import publish_json

            _emit_json(publish_json(report))
        else:
            _emit(format_report(report))


@task(
    klass=OrchestratorTask,
    help={
        "offline": "Check pins against the mirror cache instead of asking the remotes.",
        "manifest": _MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
        "release-dir": _RELEASE_DIR_HELP,
        **{k: v for k, v in _OUTPUT_HELP.items() if k != "verbose"},
    }
)
def verify(c: Context, offline: bool = False, manifest: str = "", workspace: str = "", release_dir: str = "",
           progress: str = "", quiet: bool = False, json_: bool = False) -> None:
    """Re-check a built release: files, images, provenance, and every pin."""
    with user_errors():
        from orchestrator.errors import DockerUnavailableError
        from orchestrator.release import fetch_options
        from orchestrator.verify import format_report, resolve_pins, verify_release

        _dry_run(c, "verify")
        shown = _progress(progress, quiet, False)
        settings = _settings(manifest=manifest, workspace=workspace, offline=offline)
        loaded, directory = _release(settings, manifest, release_dir)  # the right release, before the network
        engine = None
        try:
            from orchestrator.engine import Engine

            engine = Engine.from_env(timeout=60)
        except DockerUnavailableError as e:
            _note(f"no Docker engine, images will not be checked: {str(e).splitlines()[0]}")
        with shown.showing():
            shown.note("resolving every repository's ref to check the pins"
                       + (" (mirror cache only)" if settings.offline else ""))
            commits = resolve_pins(loaded, fetch_options(settings, refresh=True), on_event=shown.fetch_event)
            report = verify_release(directory, loaded, engine=engine, commits=commits)
        if json_:
            from orchestrator_cli.results import verify_json

            _emit_json(verify_json(report))
        else:
            _emit(format_report(report, checks=not quiet))
        if not report.ok:
            raise Exit(f"error: release {loaded.release} does not verify: {len(report.failures)} mismatch(es)", 1)


@task(
    klass=OrchestratorTask,
    help={
        "all": "Remove the whole workspace's .build/ and dist/ (every release, checkouts, logs), not one release.",
        "cache": "Also prune the shared mirror cache: leftovers of interrupted fetches, and mirrors of repos the "
                 "manifest does not name that no fetch (of any workspace) used for --unused-for days.",
        "unused-for": "With --cache: how many days a mirror the manifest does not name must have gone unused "
                      "to be removed (default 30; 0: any not in use right now).",
        "dry-run": "Show what would be removed; remove nothing.",
        "manifest": _MANIFEST_HELP,
        "workspace": "Directory holding .build/ and dist/ (default: the current directory).",
        "cache-dir": "Mirror cache (default $XDG_CACHE_HOME/orchestrator/git; env ORCHESTRATOR_CACHE_DIR).",
    },
)
def clean(c: Context, all_: bool = False, cache: bool = False, dry_run: bool = False, manifest: str = "",
          workspace: str = "", cache_dir: str = "", wait: bool = False, unused_for: str = "") -> None:
    """Remove a release's outputs, logs and cache records (--all: the workspace; --cache: unused mirrors)."""
    with user_errors():
        from orchestrator import housekeeping, sources
        from orchestrator.manifest import load

        dry_run = dry_run or _dry_run(c, "clean", allowed=True)
        settings = _settings(manifest=manifest, workspace=workspace, cache_dir=cache_dir, wait=wait)
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
            with writing(settings, _note):
                removed = housekeeping.remove(targets(), roots=roots, unused_days=unused_days)
        verb = "would remove" if dry_run else "removed"
        for item in removed:
            _emit(f"kept {_shown_path(item.path)}  ({item.what})" if item.kept else
                  f"{verb} {_shown_path(item.path)}  ({item.what}, {_size(item.size)})")
        removed = [item for item in removed if not item.kept]
        total = sum(item.size for item in removed)
        _emit("nothing to remove" if not removed else
              f"{'would free' if dry_run else 'freed'} {_size(total)} in {len(removed)} "
              f"{'place' if len(removed) == 1 else 'places'}")


@task(
    klass=OrchestratorTask,
    help={
        "json": "Print the status as one JSON document (the record, the manifest's path and state).",
        "manifest": _MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
        "release-dir": _RELEASE_DIR_HELP,
    },
)
def status(c: Context, json_: bool = False, manifest: str = "", workspace: str = "", release_dir: str = "") -> None:
    """Show a built release from its record: what is built, cached, failed, published, from which commits."""
    with user_errors():
        from orchestrator.manifest import load
        from orchestrator.status import format_status, status_json, status_of

        _dry_run(c, "status")
        settings = _settings(manifest=manifest, workspace=workspace)
        if release_dir:  # the record says which manifest; status reports whether it changed
            directory = Path(release_dir).expanduser()
            found = status_of(directory)
        else:
            loaded = load(settings.manifest)
            directory = settings.dist_dir / loaded.release
            found = status_of(directory, loaded)
        if json_:
            _emit(json.dumps(status_json(found), indent=2))
        else:
            _emit(format_status(found, shown_dir=_shown_path(directory), shown_manifest=_shown_path(found.manifest)))


def _size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} bytes"


namespace = OrchestratorCollection(manifest, build, fetch, demo, publish, verify, status, clean)
