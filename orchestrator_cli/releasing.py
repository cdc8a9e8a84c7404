"""The tasks that work on a built release: `publish`, `verify` and `status`.

Each finds its release the same way (flags.release_for: the manifest, or --release-dir
and the manifest its record names) and checks it is that manifest's before anything else.
"""

from __future__ import annotations

import json
from pathlib import Path

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from orchestrator_cli import flags
from orchestrator_cli.exits import user_errors
from orchestrator_cli.parsing import OrchestratorTask
from orchestrator_cli.printing import emit, emit_json, note, shown_path
from orchestrator_cli.stopping import stopping, writing


@task(
    klass=OrchestratorTask,
    positional=["names"],
    help={
        "names": "Repos or artifacts whose images to push.",
        "all": "Push the images of every artifact of the release.",
        "registry": "Push under this registry instead of the manifest's (HOST[:PORT]/, ending in '/').",
        "retries": "Extra tries for transient registry errors, with backoff (default 2).",
        "manifest": flags.MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
        "release-dir": flags.RELEASE_DIR_HELP,
        "wait": flags.WAIT_HELP,
        "sign-key": flags.SIGN_KEY_HELP,
        **flags.OUTPUT_HELP,
    },
)
def publish(c: Context, names: str | None = None, all_: bool = False, registry: str = "", retries: str = "",
            manifest: str = "", workspace: str = "", release_dir: str = "", wait: bool = False, progress: str = "",
            quiet: bool = False, verbose: bool = False, json_: bool = False, sign_key: str = "") -> None:
    """Push a built release's images, only if every selected artifact built."""
    with user_errors(json_output=json_):
        from orchestrator.plan import select
        from orchestrator.publish import format_report, publish_release

        flags.dry_run(c, "publish")
        parsed = flags.names_or_all("publish", names, all_)
        shown = flags.progress_from(progress, quiet, verbose)
        settings = flags.settings_from(manifest=manifest, workspace=workspace, retries=retries, wait=wait,
                                       sign_key=sign_key)
        settings = flags.owner_of(settings, release_dir)  # lock the workspace whose release changes
        signer = flags.signer_for(settings)  # a bad key or passphrase stops here, before anything is pushed
        with writing(settings, shown.note) as children, shown.showing():
            stopping.second_is_graceful = True  # a second Ctrl-C stops waiting for the push in flight
            loaded, directory = flags.release_for(settings, manifest, release_dir)  # the right release, before Docker
            selected = select(loaded, parsed, everything=all_)
            report = publish_release(
                directory, loaded, children.engine(), artifacts=selected,
                registry=registry or None, retries=settings.retries,
                log=shown.push_line, on_bytes=shown.push_bytes, signer=signer,
            )
        if json_:
            from orchestrator_cli.results import publish_json

            emit_json(publish_json(report))
        else:
            emit(format_report(report))



@task(
    klass=OrchestratorTask,
    iterable=["skip"],
    help={
        "offline": "Check pins against the mirror cache instead of asking the remotes.",
        "key": "Check the signature of provenance.json with this public key (PEM, ECDSA P-256 or Ed25519).",
        "registry": "Ask each registry what every pushed reference names now (credentials: the Docker config).",
        "skip": "Checks not to run, and not to hold against the release: images, signature, registry, pins "
                "(comma-separated or repeated).",
        "manifest": flags.MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
        "release-dir": flags.RELEASE_DIR_HELP,
        **{k: v for k, v in flags.OUTPUT_HELP.items() if k != "verbose"},
    }
)
def verify(c: Context, offline: bool = False, manifest: str = "", workspace: str = "", release_dir: str = "",
           progress: str = "", quiet: bool = False, json_: bool = False, key: str = "", registry: bool = False,
           skip: list[str] | None = None) -> None:
    """Re-check a built release: files, images, provenance and its signature, the registry, every pin."""
    with user_errors(json_output=json_):
        from orchestrator.errors import DockerUnavailableError, InputError
        from orchestrator.fetching import fetch_options
        from orchestrator.verify import format_report, parse_skip, resolve_pins, verify_release

        flags.dry_run(c, "verify")
        skipped = parse_skip(skip or ())
        for given, area in ((key, "signature"), (registry, "registry")):
            if given and area in skipped:
                raise InputError(f"--{'key' if area == 'signature' else 'registry'} and --skip {area} contradict "
                                 "each other", hint="give one of them")
        shown = flags.progress_from(progress, quiet, False)
        settings = flags.settings_from(manifest=manifest, workspace=workspace, offline=offline)
        verifier = None
        if key:
            from orchestrator.signing import Verifier

            verifier = Verifier.load(Path(key).expanduser())  # a bad key is bad input (exit 2), before anything
        loaded, directory = flags.release_for(settings, manifest, release_dir)  # the right release, before the network
        engine = None
        if "images" not in skipped:
            try:
                from orchestrator.engine.dockerpy import Engine

                engine = Engine.from_env(timeout=60)
            except DockerUnavailableError as e:
                note(f"no Docker engine, images will not be checked: {str(e).splitlines()[0]}")
        asker = None
        if registry:
            from orchestrator.registryapi import RegistryAPI

            asker = RegistryAPI()
        with shown.showing():
            commits = None
            if "pins" not in skipped:
                shown.note("resolving every repository's ref to check the pins"
                           + (" (mirror cache only)" if settings.offline else ""))
                commits = resolve_pins(loaded, fetch_options(settings, refresh=True), on_event=shown.fetch_event)
            report = verify_release(directory, loaded, engine=engine, commits=commits, verifier=verifier,
                                    registry=asker, skip=skipped)
        if json_:
            from orchestrator_cli.results import verify_json

            emit_json(verify_json(report))
        else:
            emit(format_report(report, checks=not quiet))
        if report.failures:
            raise Exit(f"error: release {loaded.release} does not verify: {len(report.failures)} mismatch(es)", 1)
        if report.unchecked:
            raise Exit(f"error: release {loaded.release} is not verified: {len(report.unchecked)} check(s) did not "
                       "run; run them, or name what not to check with --skip", 1)



@task(
    klass=OrchestratorTask,
    help={
        "json": "Print the status as one JSON document (the record, the manifest's path and state).",
        "manifest": flags.MANIFEST_HELP,
        "workspace": "Directory holding dist/ (default: the current directory).",
        "release-dir": flags.RELEASE_DIR_HELP,
    },
)
def status(c: Context, json_: bool = False, manifest: str = "", workspace: str = "", release_dir: str = "") -> None:
    """Show a built release from its record: what is built, cached, failed, published, from which commits."""
    with user_errors(json_output=json_):
        from orchestrator.manifest import load
        from orchestrator.status import format_status, status_json, status_of

        flags.dry_run(c, "status")
        settings = flags.settings_from(manifest=manifest, workspace=workspace)
        if release_dir:  # the record says which manifest; status reports whether it changed
            directory = Path(release_dir).expanduser()
            found = status_of(directory)
        else:
            loaded = load(settings.manifest)
            directory = settings.dist_dir / loaded.release
            found = status_of(directory, loaded)
        if json_:
            emit(json.dumps(status_json(found), indent=2))
        else:
            emit(format_status(found, shown_dir=shown_path(directory), shown_manifest=shown_path(found.manifest)))

