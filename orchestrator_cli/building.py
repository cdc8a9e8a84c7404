"""The tasks that fetch and build: `build`, `fetch`, and `demo` (build the built-in demo release).

Thin, as every task: read flags (orchestrator_cli.flags), call the library, print
(orchestrator_cli.printing); errors become exits in orchestrator_cli.exits.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from orchestrator.errors import InputError, Interrupted
from orchestrator.settings import Settings
from orchestrator_cli import flags
from orchestrator_cli.exits import user_errors
from orchestrator_cli.parsing import OrchestratorTask
from orchestrator_cli.printing import emit, emit_json, note, runnable, shown_path
from orchestrator_cli.stopping import writing

if TYPE_CHECKING:
    from orchestrator.children import Children
    from orchestrator.manifest import Manifest
    from orchestrator.plan import Plan
    from orchestrator_cli.display import Progress


def _run_build(settings: Settings, names: tuple[str, ...], everything: bool, keep_going: bool, progress: Progress,
               children: Children, *, json_: bool = False, demo: bool = False,
               force: str | bool | None = None) -> None:
    from orchestrator.manifest import load
    from orchestrator.plan import make_plan
    from orchestrator.release import build_release
    from orchestrator_cli.display import summary

    loaded = load(settings.manifest)
    plan = make_plan(loaded, names, everything=everything)
    signer = flags.signer_for(settings)  # a bad key or passphrase stops the run here, before any work
    forced = _forced(loaded, plan, force)
    with progress.showing():
        outcome = build_release(loaded, plan, settings, keep_going=keep_going or settings.assemble,
                                tolerate_missing_docker=demo, on_event=progress, on_fetch=progress.fetch_event,
                                force=forced, on_log=progress.log_line, children=children, on_warning=progress.note,
                                signer=signer)
    if json_:
        from orchestrator_cli.results import build_json

        emit_json(build_json(outcome))
    else:
        emit(summary(outcome, table_too=not progress.quiet))
    if outcome.docker_problem and not progress.quiet:
        skipped = [n for n, r in outcome.results.items() if r.status == "skipped" and "Docker" in (r.error or "")]
        note("not built, no Docker engine: " + ", ".join(skipped) + "\n  "
              + outcome.docker_problem.replace("\n", "\n  "))
    if settings.assemble and outcome.failed:
        raise Exit(f"error: cannot assemble release {loaded.release}: {len(outcome.failed)} artifact(s) are not in "
                   f"the cache {settings.cache} (no shard produced them, or their entries were refused): "
                   + ", ".join(r.artifact for r in outcome.failed), 1)
    if outcome.failed or not outcome.ok:
        raise Exit(f"error: {len(outcome.failed)} artifact(s) failed: "
                   + ", ".join(r.artifact for r in outcome.failed), 1)



def _forced(loaded: Manifest, plan: Plan, force: str | bool | None) -> frozenset[str] | bool:
    """What ``--force`` rebuilds: everything (True), the named artifacts, or nothing. Names
    outside the plan are refused: the user expects a rebuild that would not happen."""
    from orchestrator.plan import select

    if force is True:
        return True
    if not isinstance(force, str) or not force:
        return False
    forced = frozenset(select(loaded, flags.check_names(force)))
    if outside := sorted(forced - {step.artifact for step in plan.steps}):
        raise InputError(f"--force={force} names what this build does not include: {', '.join(outside)}",
                         hint="add them to the names to build, or leave them out of --force")
    return forced


@task(klass=OrchestratorTask, positional=["names"], iterable=["mirror"], optional=["force"],
      help={**flags.BUILD_HELP, **flags.SHARED_HELP})
def build(c: Context, names: str | None = None, all_: bool = False, dry_run: bool = False, jobs: str = "",
          keep_going: bool = False, force: str | None = None, offline: bool = False,
          mirror: list[str] | None = None, manifest: str = "", workspace: str = "", wait: bool = False,
          progress: str = "", quiet: bool = False, verbose: bool = False, json_: bool = False, cache: str = "",
          cache_mode: str = "", require_cache: bool = False, shard: str = "", shard_deps: str = "",
          assemble: bool = False, sign_key: str = "") -> None:
    """Build artifacts with their dependencies: `build felix`, `build --all`."""
    with user_errors(json_output=json_):
        from orchestrator import describe
        from orchestrator.manifest import load
        from orchestrator.plan import make_plan

        parsed = flags.names_or_all("build", names, all_)
        dry_run = dry_run or flags.dry_run(c, "build", allowed=True)
        shown = flags.progress_from(progress, quiet, verbose)
        settings = flags.shared_settings(flags.settings_from(
            manifest=manifest, jobs=jobs, workspace=workspace, offline=offline, mirrors=mirror or [], wait=wait,
            cache=cache, cache_mode=cache_mode, require_cache=require_cache, shard=shard, shard_deps=shard_deps,
            assemble=assemble, sign_key=sign_key))
        loaded = load(settings.manifest)
        plan = make_plan(loaded, parsed, everything=all_)
        _forced(loaded, plan, force)  # a --force that would not apply is refused before any work
        if dry_run:  # a reader: never takes the workspace lock
            if json_:
                emit_json(describe.plan_json(plan))
            else:
                emit(describe.plan_text(plan))
            return
        with writing(settings, shown.note, commands=True) as children:
            _run_build(settings, parsed, all_, keep_going, shown, children, json_=json_, force=force)


@task(
    klass=OrchestratorTask,
    positional=["names"],
    iterable=["mirror"],
    help={**{k: v for k, v in flags.BUILD_HELP.items() if k in ("names", "jobs", "offline", "mirror", "manifest",
                                                                "workspace", "wait", *flags.OUTPUT_HELP)},
          "all": "Fetch every repository of the manifest.",
          "retries": "Extra tries for network steps, with backoff (default 2).",
          "cache-dir": flags.CACHE_DIR_HELP},
)
def fetch(c: Context, names: str | None = None, all_: bool = False, jobs: str = "", offline: bool = False,
          mirror: list[str] | None = None, retries: str = "", cache_dir: str = "", manifest: str = "",
          workspace: str = "", wait: bool = False, progress: str = "", quiet: bool = False, verbose: bool = False,
          json_: bool = False) -> None:
    """Fetch repositories at their pinned commits into .build/src/: `fetch --all`."""
    with user_errors(json_output=json_):
        from orchestrator.fetching import fetch_sources, repos_to_fetch
        from orchestrator.manifest import load

        flags.dry_run(c, "fetch")
        parsed = flags.names_or_all("fetch", names, all_)
        shown = flags.progress_from(progress, quiet, verbose)
        settings = flags.settings_from(manifest=manifest, jobs=jobs, workspace=workspace, offline=offline,
                             mirrors=mirror or [], retries=retries, cache_dir=cache_dir, wait=wait)
        loaded = load(settings.manifest)
        repos = repos_to_fetch(loaded, parsed, everything=all_)
        with writing(settings, shown.note), shown.showing():
            checkouts = fetch_sources(loaded, repos, settings, shown.fetch_event)
        if json_:
            from orchestrator_cli.results import fetch_json

            emit_json(fetch_json(checkouts))
            return
        for name, source in checkouts.items():
            emit(f"{name:<20} {source.ref:<12} {source.commit}  {shown_path(source.path)}")


@task(klass=OrchestratorTask, optional=["force"],
      help={**{k: v for k, v in flags.BUILD_HELP.items() if k in ("jobs", "keep-going", "force")},
            "registry": "Image prefix of the demo's images (default orchestrator-demo.invalid/, which never "
                        "resolves); HOST[:PORT]/ ending in '/'.",
            "workspace": "Directory for the demo's repositories, .build/ and dist/ (default: current directory).",
            "wait": flags.WAIT_HELP, **flags.OUTPUT_HELP, **flags.SHARED_HELP})
def demo(c: Context, jobs: str = "", keep_going: bool = False, force: str | None = None, registry: str = "",
         workspace: str = "", wait: bool = False, progress: str = "", quiet: bool = False, verbose: bool = False,
         json_: bool = False, cache: str = "", cache_mode: str = "", require_cache: bool = False, shard: str = "",
         shard_deps: str = "", assemble: bool = False) -> None:
    """Build the built-in demo release offline (local repos shaped like Calico's)."""
    with user_errors(json_output=json_):
        from orchestrator.sandbox import DEMO_REGISTRY, create_demo

        flags.dry_run(c, "demo")
        shown = flags.progress_from(progress, quiet, verbose)
        prefix = flags.registry_prefix(registry or DEMO_REGISTRY)
        shared = {"cache": cache, "cache_mode": cache_mode, "require_cache": require_cache, "shard": shard,
                  "shard_deps": shard_deps, "assemble": assemble}
        base = flags.shared_settings(flags.settings_from(workspace=workspace, jobs=jobs, wait=wait, **shared))
        with writing(base, shown.note, commands=True) as children:
            manifest_path = create_demo(base.build_dir / "demo", registry=prefix)
            shown.note(f"demo repositories and manifest: {shown_path(manifest_path.parent)}")
            settings = flags.settings_from(manifest=str(manifest_path), workspace=workspace, jobs=jobs, wait=wait,
                                           **shared)
            try:
                _run_build(settings, (), True, keep_going, shown, children, json_=json_, demo=True, force=force)
            except (Interrupted, KeyboardInterrupt):
                raise  # nothing to work on: a stopped run leaves a release that says "building"
            except BaseException:
                if not json_ and not quiet:  # a failure: the commands help to look at it
                    emit(_next_steps(manifest_path, workspace))
                raise
            if not json_ and not quiet:
                emit(_next_steps(manifest_path, workspace))



def _next_steps(manifest_path: Path, workspace: str) -> str:
    """The commands that act on the demo release, ready to paste."""

    where = f" -m {shlex.quote(shown_path(manifest_path))}"
    if workspace:
        where += f" -w {shlex.quote(workspace)}"
    run = runnable()
    steps = [
        (f"{run} build felix{where}", "rebuild one artifact (and what it needs); cached ones are kept"),
        (f"{run} verify --offline --skip signature{where}", "re-check the release (unsigned: no --sign-key)"),
        (f"{run} publish --all{where} -r 127.0.0.1:5000/", "push its images to a local registry"),
    ]
    width = max(len(command) for command, _ in steps)
    return "\nwork on the demo release with:\n" + "\n".join(
        f"  {command:<{width}}  # {why}" for command, why in steps)

